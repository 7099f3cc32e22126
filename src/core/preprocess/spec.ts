/**
 * How a backbone wants its pixels. Runtime-neutral: Node (sharp) and browser (canvas) both implement it.
 *
 * A pixel value v in 0..255 becomes ((v * scale) - mean[c]) / std[c], channel c in `channelOrder`.
 * ImageNet torchvision style: scale 1/255, mean .485/.456/.406, std .229/.224/.225.
 * TF style (x/127.5 - 1): scale 1/127.5, mean 1, std 1.
 */
export interface PreprocessSpec {
  /** Tensor layout the model input expects. */
  layout: 'NCHW' | 'NHWC';
  /** Final tensor width and height (after crop). */
  width: number;
  height: number;
  /**
   * `shorter-side`: scale so the shorter side equals `resizeTo`, keeping aspect, then crop.
   * `stretch`: scale straight to width x height (aspect not kept, no crop).
   */
  resize: 'shorter-side' | 'stretch';
  /** Shorter side length for `shorter-side` (e.g. 256 for a 224 center crop). Ignored for `stretch`. */
  resizeTo: number;
  crop: 'center' | 'none';
  channelOrder: 'RGB' | 'BGR';
  scale: number;
  mean: [number, number, number];
  std: [number, number, number];
}

export const IMAGENET_MEAN: [number, number, number] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: [number, number, number] = [0.229, 0.224, 0.225];

/** The torchvision ImageNet recipe: shorter side 256, center crop 224, /255, ImageNet mean/std. */
export const IMAGENET_224: PreprocessSpec = {
  layout: 'NCHW',
  width: 224,
  height: 224,
  resize: 'shorter-side',
  resizeTo: 256,
  crop: 'center',
  channelOrder: 'RGB',
  scale: 1 / 255,
  mean: IMAGENET_MEAN,
  std: IMAGENET_STD,
};
