import { IMAGENET_224, type PreprocessSpec } from '../preprocess/spec.js';
import type { CatalogEntry } from './catalog-types.js';

/**
 * The backbones a user can obtain by id: bundled with the package (models/) or downloadable from their URL.
 * Runtime-neutral data (the browser bundle reuses it); models/catalog.json is the same list for tools outside
 * TypeScript, and a test keeps the two identical. Other models (your own, test graphs) need no entry: they are found
 * by path or as `<id>.onnx` on the model search path and described by a sidecar `<model>.edgetl.json` or defaults.
 *
 * Ids are file names without `.onnx`. A file whose sha256 matches an entry gets that entry's preprocessing,
 * whatever it is called. Sizes and sha256 of the zoo files are those of the ONNX Model Zoo's Git LFS pointers.
 */

const ZOO = 'https://github.com/onnx/models/raw/main/';
const ZOO_LICENSE = 'Apache-2.0';

const imagenet = (layout: 'NCHW' | 'NHWC' = 'NCHW'): PreprocessSpec => ({
  ...IMAGENET_224,
  layout,
  mean: [...IMAGENET_224.mean],
  std: [...IMAGENET_224.std],
});

/** EfficientNet-Lite (TF): NHWC, (x - 127) / 128 after resizing the shorter side to 224/0.875 = 256 and cropping 224. */
const EFFICIENTNET_LITE_TF: PreprocessSpec = {
  ...IMAGENET_224,
  layout: 'NHWC',
  scale: 1,
  mean: [127, 127, 127],
  std: [128, 128, 128],
};

/** timm tf_efficientnet_lite0: mean = std = 0.5 on 0..1 pixels, crop_pct 0.882 (224 / 0.882 = 254). */
const TIMM_TF_LITE0: PreprocessSpec = {
  ...IMAGENET_224,
  resizeTo: 254,
  mean: [0.5, 0.5, 0.5],
  std: [0.5, 0.5, 0.5],
};

const IMAGENET_LABELS = 'labels/imagenet-simple-labels.json';

const ENTRIES: readonly CatalogEntry[] = [
  // ---- bundled with the package (models/), and downloadable
  {
    id: 'mobilenetv2-12-int8',
    file: 'mobilenetv2-12-int8.onnx',
    sha256: 'cc028fe6cae7bc11a4ff53cfc9b79c920e8be65ce33a904ec3e2a8f66d77f95f',
    bytes: 3655033,
    license: ZOO_LICENSE,
    url: `${ZOO}validated/vision/classification/mobilenet/model/mobilenetv2-12-int8.onnx`,
    source: 'ONNX Model Zoo validated/vision/classification/mobilenet/model/mobilenetv2-12-int8.onnx',
    kind: 'pretrained',
    description:
      'MobileNetV2 1.0 ImageNet, int8 QOperator (QLinearConv/QLinearMatMul); 68.3% top-1. The default backbone: small, fast on CPU.',
    input: { name: 'input', layout: 'NCHW' },
    preprocess: imagenet(),
    embedding: { tensor: '464_quantized', dim: 1280 },
    bundled: true,
    labels: IMAGENET_LABELS,
    notes: 'The pooled 1280-d embedding is uint8 inside the graph; the feature extractor adds a DequantizeLinear.',
  },
  {
    id: 'shufflenet-v2-12-qdq',
    file: 'shufflenet-v2-12-qdq.onnx',
    sha256: '7c536d02e2f6af9569e5f3c7a4d8282060072119524c93c8da71e63876b4722b',
    bytes: 2415805,
    license: 'BSD-3-Clause',
    url: `${ZOO}validated/vision/classification/shufflenet/model/shufflenet-v2-12-qdq.onnx`,
    source: 'ONNX Model Zoo validated/vision/classification/shufflenet/model/shufflenet-v2-12-qdq.onnx',
    kind: 'pretrained',
    description: 'ShuffleNet V2 1.0 ImageNet, int8 QDQ graph (standard ops only).',
    input: { name: 'input', layout: 'NCHW' },
    preprocess: imagenet(),
    embedding: { tensor: '611', dim: 1024 },
    fixedBatch: 1,
    labels: IMAGENET_LABELS,
    notes: 'Batch is fixed at 1 by Reshape constants: run it one image at a time.',
  },
  // ---- ONNX Model Zoo downloads
  {
    id: 'mobilenetv2-12',
    file: 'mobilenetv2-12.onnx',
    sha256: 'c0c3f76d93fa3fd6580652a45618618a220fced18babf65774ed169de0432ad5',
    bytes: 13964571,
    license: ZOO_LICENSE,
    url: `${ZOO}validated/vision/classification/mobilenet/model/mobilenetv2-12.onnx`,
    source: 'ONNX Model Zoo validated/vision/classification/mobilenet/model/mobilenetv2-12.onnx',
    kind: 'pretrained',
    description: 'MobileNetV2 1.0 ImageNet, fp32.',
    input: { name: 'input', layout: 'NCHW' },
    preprocess: imagenet(),
    embedding: { dim: 1280 },
    labels: IMAGENET_LABELS,
  },
  {
    id: 'resnet18-v1-7',
    file: 'resnet18-v1-7.onnx',
    sha256: '4e8f8653e7a2222b3904cc3fe8e304cd8b339ce1d05fd24688162f86fb6df52c',
    bytes: 46820737,
    license: ZOO_LICENSE,
    url: `${ZOO}validated/vision/classification/resnet/model/resnet18-v1-7.onnx`,
    source: 'ONNX Model Zoo validated/vision/classification/resnet/model/resnet18-v1-7.onnx (MXNet Gluon)',
    kind: 'pretrained',
    description: 'ResNet-18 v1 ImageNet, fp32; 69.9% top-1.',
    input: { name: 'data', layout: 'NCHW' },
    preprocess: imagenet(),
    embedding: { dim: 512 },
    labels: IMAGENET_LABELS,
  },
  {
    id: 'resnet18-v2-7',
    file: 'resnet18-v2-7.onnx',
    sha256: '3b4d048057854022232aa20bf68262e31718ab7119a17f920b8a2dc1433f824b',
    bytes: 46806737,
    license: ZOO_LICENSE,
    url: `${ZOO}validated/vision/classification/resnet/model/resnet18-v2-7.onnx`,
    source: 'ONNX Model Zoo validated/vision/classification/resnet/model/resnet18-v2-7.onnx (MXNet Gluon)',
    kind: 'pretrained',
    description: 'ResNet-18 v2 (pre-activation) ImageNet, fp32; 69.7% top-1.',
    input: { name: 'data', layout: 'NCHW' },
    preprocess: imagenet(),
    embedding: { dim: 512 },
    labels: IMAGENET_LABELS,
  },
  {
    id: 'resnet50-v1-12',
    file: 'resnet50-v1-12.onnx',
    sha256: '3f03fdef724b22947eed826f1eef1dc5c34151bb4c37d634f1db89dfa2dd1526',
    bytes: 102576593,
    license: ZOO_LICENSE,
    url: `${ZOO}validated/vision/classification/resnet/model/resnet50-v1-12.onnx`,
    source: 'ONNX Model Zoo validated/vision/classification/resnet/model/resnet50-v1-12.onnx',
    kind: 'pretrained',
    description: 'ResNet-50 v1 ImageNet, fp32; 75.0% top-1.',
    input: { name: 'data', layout: 'NCHW' },
    preprocess: imagenet(),
    embedding: { dim: 2048 },
    labels: IMAGENET_LABELS,
  },
  {
    id: 'resnet50-v2-7',
    file: 'resnet50-v2-7.onnx',
    sha256: '79102261eb6e5fd7af5d27f41316293e388c5cb691e5d25bfb035c4f64fefe31',
    bytes: 102442452,
    license: ZOO_LICENSE,
    url: `${ZOO}validated/vision/classification/resnet/model/resnet50-v2-7.onnx`,
    source: 'ONNX Model Zoo validated/vision/classification/resnet/model/resnet50-v2-7.onnx (MXNet Gluon)',
    kind: 'pretrained',
    description: 'ResNet-50 v2 (pre-activation) ImageNet, fp32; 75.8% top-1.',
    input: { name: 'data', layout: 'NCHW' },
    preprocess: imagenet(),
    embedding: { dim: 2048 },
    labels: IMAGENET_LABELS,
  },
  {
    id: 'resnet50-v1-12-int8',
    file: 'resnet50-v1-12-int8.onnx',
    sha256: 'c234f30975989788b4405f25253275aae247ab6dbdd34aaa69ab0a59ff76f6d0',
    bytes: 25816052,
    license: ZOO_LICENSE,
    url: `${ZOO}validated/vision/classification/resnet/model/resnet50-v1-12-int8.onnx`,
    source:
      'ONNX Model Zoo validated/vision/classification/resnet/model/resnet50-v1-12-int8.onnx (Intel Neural Compressor)',
    kind: 'pretrained',
    description: 'ResNet-50 v1 ImageNet, int8 QOperator; 74.8% top-1.',
    input: { name: 'data', layout: 'NCHW' },
    preprocess: imagenet(),
    embedding: { dim: 2048 },
    labels: IMAGENET_LABELS,
  },
  {
    id: 'resnet50-v1-12-qdq',
    file: 'resnet50-v1-12-qdq.onnx',
    sha256: 'e6429d274805654c79ba68dc886c1efd4eff95393e747c35d3fdab579febd8a0',
    bytes: 25753167,
    license: ZOO_LICENSE,
    url: `${ZOO}validated/vision/classification/resnet/model/resnet50-v1-12-qdq.onnx`,
    source:
      'ONNX Model Zoo validated/vision/classification/resnet/model/resnet50-v1-12-qdq.onnx (Intel Neural Compressor)',
    kind: 'pretrained',
    description: 'ResNet-50 v1 ImageNet, int8 QDQ; 74.4% top-1.',
    input: { name: 'data', layout: 'NCHW' },
    preprocess: imagenet(),
    embedding: { dim: 2048 },
    labels: IMAGENET_LABELS,
  },
  {
    id: 'efficientnet-lite4-11',
    file: 'efficientnet-lite4-11.onnx',
    sha256: 'd111689907c06eea7c82e4833ddef758da6453b9d4cf60b7e99ca05c7cbd9c12',
    bytes: 51946641,
    license: 'MIT',
    url: `${ZOO}validated/vision/classification/efficientnet-lite4/model/efficientnet-lite4-11.onnx`,
    source:
      'ONNX Model Zoo validated/vision/classification/efficientnet-lite4/model/efficientnet-lite4-11.onnx (TensorFlow)',
    kind: 'pretrained',
    description: 'EfficientNet-Lite4 ImageNet, fp32, NHWC input; 80.4% top-1.',
    input: { name: 'images:0', layout: 'NHWC' },
    preprocess: EFFICIENTNET_LITE_TF,
    embedding: { dim: 1280 },
    fixedBatch: 1,
    labels: IMAGENET_LABELS,
    notes: 'NHWC [1,224,224,3] input with (x-127)/128 scaling; the batch size of 1 is baked into the exported graph.',
  },
  {
    id: 'efficientnet-lite4-11-int8',
    file: 'efficientnet-lite4-11-int8.onnx',
    sha256: '2b3cbb5077262b20df565dacddecb3724c0976c35029a87e512d13aa4eff04a2',
    bytes: 13585963,
    license: 'MIT',
    url: `${ZOO}validated/vision/classification/efficientnet-lite4/model/efficientnet-lite4-11-int8.onnx`,
    source: 'ONNX Model Zoo validated/vision/classification/efficientnet-lite4/model/efficientnet-lite4-11-int8.onnx',
    kind: 'pretrained',
    description: 'EfficientNet-Lite4 ImageNet, int8, NHWC input.',
    input: { name: 'images:0', layout: 'NHWC' },
    preprocess: EFFICIENTNET_LITE_TF,
    embedding: { dim: 1280 },
    fixedBatch: 1,
    labels: IMAGENET_LABELS,
    notes: 'NHWC [1,224,224,3] input with (x-127)/128 scaling, like the fp32 file.',
  },
  {
    id: 'efficientnet_b0_Opset17',
    file: 'efficientnet_b0_Opset17.onnx',
    sha256: 'e76596a2b9e27c7c734c38550859105b43fec926f13447a84dad175eb994068a',
    bytes: 21128851,
    license: 'Apache-2.0',
    url: `${ZOO}Computer_Vision/efficientnet_b0_Opset17_timm/efficientnet_b0_Opset17.onnx`,
    source: 'ONNX Model Zoo Computer_Vision/efficientnet_b0_Opset17_timm (timm efficientnet_b0)',
    kind: 'pretrained',
    description: 'EfficientNet-B0 ImageNet (timm), fp32, opset 17.',
    input: { layout: 'NCHW' },
    preprocess: imagenet(),
    embedding: { dim: 1280 },
    labels: IMAGENET_LABELS,
  },
  {
    id: 'tf_efficientnet_lite0_Opset17',
    file: 'tf_efficientnet_lite0_Opset17.onnx',
    sha256: '21c785a65bd4cc164af901f0014db593ee298115c9252d007afbe35f76381ddc',
    bytes: 18630116,
    license: 'Apache-2.0',
    url: `${ZOO}Computer_Vision/tf_efficientnet_lite0_Opset17_timm/tf_efficientnet_lite0_Opset17.onnx`,
    source: 'ONNX Model Zoo Computer_Vision/tf_efficientnet_lite0_Opset17_timm (timm tf_efficientnet_lite0)',
    kind: 'pretrained',
    description: 'EfficientNet-Lite0 ImageNet (TF weights ported by timm), fp32, opset 17.',
    input: { layout: 'NCHW' },
    preprocess: TIMM_TF_LITE0,
    embedding: { dim: 1280 },
    labels: IMAGENET_LABELS,
    notes: 'timm config: mean = std = 0.5, crop_pct 0.882.',
  },
];

export const DEFAULT_BACKBONE_ID = 'mobilenetv2-12-int8';

/** Every catalog entry (copies: callers may modify them freely). */
export function catalogEntries(): CatalogEntry[] {
  return ENTRIES.map(cloneEntry);
}

export function findCatalogEntry(id: string): CatalogEntry | undefined {
  const entry = ENTRIES.find((e) => e.id === id);
  return entry ? cloneEntry(entry) : undefined;
}

export function findCatalogEntryBySha256(sha256: string): CatalogEntry | undefined {
  const wanted = sha256.toLowerCase();
  const entry = ENTRIES.find((e) => e.sha256 === wanted);
  return entry ? cloneEntry(entry) : undefined;
}

function cloneEntry(entry: CatalogEntry): CatalogEntry {
  return JSON.parse(JSON.stringify(entry)) as CatalogEntry;
}

/** The text of models/catalog.json (kept identical to this module by test/models/catalog.test.ts). */
export function catalogJson(): string {
  return JSON.stringify({ catalogVersion: 1, defaultBackbone: DEFAULT_BACKBONE_ID, entries: ENTRIES }, null, 2) + '\n';
}
