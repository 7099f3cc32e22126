/**
 * A backbone and a head joined: images in, labels out.
 *
 *   const classifier = await Classifier.load({ backbone: 'mobilenetv2-12-int8', head: 'head.json' });
 *   const { label, score, topK } = await classifier.classify('photo.jpg', { topK: 3 });
 *   await classifier.close();
 */
import { Backbone, type BackboneLoadOptions } from './embed/backbone.js';
import type { ImageSource } from './preprocess/node-image.js';
import { Head, type Prediction } from './heads/head.js';
import { loadHead } from './head-io.js';
import { assertHeadFitsBackbone } from './heads/compatibility.js';

export interface ClassifierLoadOptions extends BackboneLoadOptions {
  /** Catalog id, path, or an open Backbone (not closed by `classifier.close()` then). */
  backbone: string | Backbone;
  /** Head file path (or URL), or a Head. */
  head: string | Head;
}

export interface ClassifiedImage extends Prediction {
  /** Index of the image in the input list. */
  input: number;
}

export class Classifier {
  private constructor(
    readonly backbone: Backbone,
    readonly head: Head,
    private readonly ownsBackbone: boolean,
  ) {}

  /** Refuses a head trained on another backbone (sha256 or embedding size), naming both. */
  static check(backbone: Backbone, head: Head): void {
    assertHeadFitsBackbone(head.backbone, backbone, { what: 'head' });
  }


  static async load(options: ClassifierLoadOptions): Promise<Classifier> {
    const head = typeof options.head === 'string' ? await loadHead(options.head) : options.head;
    const ownsBackbone = typeof options.backbone === 'string';
    const backbone = typeof options.backbone === 'string' ? await Backbone.load(options.backbone, options) : options.backbone;
    try {
      Classifier.check(backbone, head);
    } catch (error) {
      if (ownsBackbone) await backbone.close();
      throw error;
    }
    return new Classifier(backbone, head, ownsBackbone);
  }

  get labels(): string[] {
    return this.head.labels;
  }

  async classify(image: ImageSource, options: { topK?: number } = {}): Promise<Prediction> {
    return this.head.predict(await this.backbone.embed(image), options);
  }

  /**
   * Classify many images (batched embedding). Unusable images are skipped and listed with their reason, unless
   * `strict`, which stops at the first one.
   */
  async classifyMany(
    images: readonly ImageSource[],
    options: { topK?: number; strict?: boolean; useCache?: boolean; batchSize?: number; onProgress?: (done: number, total: number) => void } = {},
  ): Promise<{ predictions: ClassifiedImage[]; skipped: { input: number; path: string; reason: string }[] }> {
    const result = await this.backbone.embedMany(images, {
      strict: options.strict,
      useCache: options.useCache,
      batchSize: options.batchSize,
      onProgress: options.onProgress ? (done, total) => options.onProgress!(done, total ?? images.length) : undefined,
    });
    const predictions = this.head.predictMany(result.embeddings, result.items.length, { topK: options.topK });
    return {
      predictions: predictions.map((p, i) => ({ ...p, input: result.items[i].index })),
      skipped: result.skipped.map((s) => ({ input: s.index, path: s.path, reason: s.reason })),
    };
  }

  async close(): Promise<void> {
    if (this.ownsBackbone) await this.backbone.close();
  }
}
