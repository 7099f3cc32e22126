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
 *
 * What a page uses: backbones (a prepared feature extractor, or a classifier cut here), the session under them,
 * the canvas preprocessing, heads (trained in a Web Worker or on the page, the head file, drift), IndexedDB
 * storage, errors and the version. Every type these take or return is exported too. The rest is internal (the kiosk
 * app and the tests import it from its module path); test/public-api.test.ts pins this list.
 */
export { EDGETL_VERSION } from '../core/version.js';
export { EdgetlError, isEdgetlError } from '../core/util/errors.js';

// Backbones: a prepared feature extractor, or an unmodified classifier cut here (also for a fine-tuned head).
export {
  WebBackbone,
  type WebBackboneInfo,
  type LoadWebBackboneOptions,
  type EmbedProgress,
  type EmbedTimings,
} from './backbone.js';
export { loadBackboneFromClassifier, loadAdaptedBackbone } from './feature-extractor.js';
// The session under a WebBackbone, for a page that runs a second model (see keepOnGpu) on the same provider choice.
export {
  WebInferenceSession,
  type WebProviderRequest,
  type WebSessionOptions,
  type WebProviderReport,
  type CpuTensor,
} from './execution/web-session.js';
export type { ProviderReport, ProviderFallback, AdapterInfo } from '../core/execution/types.js';

// Images to the tensor (or pixels) a backbone is fed, with Node's resize up to 3 megapixels.
export {
  imageToTensor,
  imageToPixels,
  type BrowserImageSource,
  type CanvasResizeQuality,
  type CanvasPreprocessOptions,
} from './preprocess/canvas.js';
export { PreprocessWorker, type PreprocessingReport, type WorkerTensor } from './preprocess/in-worker.js';
export type { PreprocessSpec } from '../core/preprocess/spec.js';

// Heads: trained in a Web Worker (or on the page), the head file, predictions, drift of the live frames.
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
export { Head, UNKNOWN_LABEL, type Prediction, type RejectionReason } from '../core/heads/head.js';
export { trainHead, type TrainHeadOptions } from '../core/heads/train.js';
export { driftReport, driftFromScores, type DriftReport } from '../core/heads/drift.js';

// The last head and the examples' embeddings, kept in IndexedDB across reloads.
export { openEdgetlStore, type EdgetlStore, type StoredExamples, type StoredHeadEntry } from './storage.js';

// The types the functions and classes above take and return, so a caller can name them (types only: nothing runs).
export type { EmbeddingBackbone, BackboneSession, SessionOutput } from '../core/contract.js';
export type { ResizeGeometry, TensorSlot } from '../core/preprocess/tensor.js';
export type { EmbeddingRows } from '../core/heads/train.js';
export type { HeadInit, HeadWeights, HeadOpenSet, HeadAdaptation, AdaptedBlock } from '../core/heads/head.js';
export type { Normalization } from '../core/heads/normalization.js';
export type {
  HeadType,
  HeadFileContent,
  HeadBackboneRef,
  TrainingSummary,
  ParseOptions,
  SerializeOptions,
} from '../core/formats/head-file.js';
export {
  fineTuneInWorker,
  fineTuneActivationsInWorker,
  type WebFineTuneRequest,
  type WebFineTuneOptions,
  type FineTuneActivations,
} from './fine-tune.js';
export type { FineTuneReport, FineTuneSettings } from '../core/heads/fine-tune-head.js';
