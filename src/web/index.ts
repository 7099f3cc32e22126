/**
 * edgetl in the browser (`edgetl/web`): the same backbones and head files as in Node.
 *
 *   const backbone = await WebBackbone.load({ model: '/models/x.features.onnx', id, sha256, preprocess });
 *   const head = parseWebHead(await (await fetch('/head.json')).text());
 *   assertHeadFitsBackbone(head, backbone.info);
 *   head.predict(await backbone.embed(videoElement));
 *
 * onnxruntime-web is an external import: map `onnxruntime-web` to its ESM bundle (import map) or let a bundler
 * resolve it; set `wasmPaths` to where its .wasm files are served.
 */
export {
  WebBackbone,
  type WebBackboneInfo,
  type LoadWebBackboneOptions,
  type EmbedProgress,
  type EmbedTimings,
} from './backbone.js';
export {
  featureExtractorFromBytes,
  loadBackboneFromClassifier,
  loadAdaptedBackbone,
  type BrowserFeatureExtractor,
} from './feature-extractor.js';
export {
  WebInferenceSession,
  probeWebGpu,
  describeAdapter,
  onnxruntimeWebVersion,
  type WebProviderRequest,
  type WebSessionOptions,
  type WebProviderReport,
  type CpuTensor,
} from './execution/web-session.js';
export { sha256HexAsync } from '../core/formats/sha256.js';
export {
  imageToTensor,
  imageToPixels,
  type BrowserImageSource,
  type CanvasResizeQuality,
  type CanvasPreprocessOptions,
} from './preprocess/canvas.js';
export { resizeGeometry, writePixelsToTensor, tensorDims, tensorElementsPerImage } from '../core/preprocess/tensor.js';
export type { PreprocessSpec } from '../core/preprocess/spec.js';
export {
  trainHeadInWorker,
  parseWebHead,
  assertHeadFitsBackbone,
  type WebHead,
  type WebHeadType,
  type WebPrediction,
  type WebTrainRequest,
  type WebTrainProgress,
} from './heads.js';
export { Head, UNKNOWN_LABEL, predictionJson, type Prediction, type RejectionReason } from '../core/heads/head.js';
export { driftReport, driftFromScores, type DriftReport } from '../core/heads/drift.js';
export { trainHead, type TrainHeadOptions } from '../core/heads/train.js';
export {
  openEdgetlStore,
  downloadText,
  type EdgetlStore,
  type StoredExamples,
  type StoredHeadEntry,
} from './storage.js';
export { EdgetlError } from '../core/util/errors.js';
export {
  fineTuneInWorker,
  fineTuneActivationsInWorker,
  type WebFineTuneRequest,
  type WebFineTuneOptions,
  type FineTuneActivations,
} from './fine-tune.js';
export type { FineTuneReport, FineTuneSettings } from '../core/heads/fine-tune-head.js';
