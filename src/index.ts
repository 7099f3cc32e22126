/**
 * edgetl's public Node API: what an app developer uses, in the order the data flows:
 * photos -> Backbone (embeddings) -> trainHead / fineTuneHead -> Head (file) -> Classifier (predictions), then
 * evaluation, drift and adaptation in the field, choosing a backbone, benchmarks, deployment (merged ONNX, kiosk).
 * Every type these take or return is exported too, so a caller can name it.
 *
 * Everything else (ONNX surgery, resampling, provider planning, file-format parsers, ...) is internal: edgetl's own
 * bench/ and test/ import it from its module path, and it may change in any release. The browser API is
 * `edgetl/web` (src/web/index.ts). test/public-api.test.ts pins this list.
 */

// `Head.load` / `head.save` read and write files (atomically) in Node; without this import they would only fetch URLs.
import './node/head-io.js';

export { EDGETL_VERSION } from './core/version.js';
export { EdgetlError, isEdgetlError } from './core/util/errors.js';

// Backbones: open one (catalog id or .onnx path), embed photos. The catalog lists what can be opened by id.
export { Backbone, type BackboneLoadOptions } from './node/embed/backbone.js';
export type { EmbedManyOptions, EmbedManyResult, EmbeddedItem, SkippedItem } from './node/embed/pipeline.js';
export { BadImageError, type ImageSource, type RawImage, type DecodeOptions } from './node/preprocess/node-image.js';
export type { PreprocessSpec } from './core/preprocess/spec.js';
export { catalogEntries, DEFAULT_BACKBONE_ID } from './core/models/catalog.js';
export type { CatalogEntry } from './core/models/catalog-types.js';
export type {
  ExecutionOptions,
  ExecutionProviderName,
  ExecutionProviderRequest,
  ProviderReport,
  ProviderFallback,
  AdapterInfo,
} from './core/execution/types.js';
// The session under a Backbone, for running another ONNX model with the same provider choice and report
// (the browser's counterpart is WebInferenceSession).
export {
  createSession,
  type CreateSessionOptions,
  type BackboneSession,
  type SessionOutput,
} from './node/execution/session.js';

// Photo folders (<class>/<photo>) and embedding sets (the .npy + .json pair `edgetl embed` writes).
export { scanImageFolder, type ImageFolder, type DatasetItem } from './node/embed/dataset.js';
export { embedFolder, type EmbedFolderOptions, type EmbedFolderResult } from './node/embed/embed-folder.js';
export {
  tuneEmbedding,
  saveEmbedTuning,
  savedEmbedTuning,
  defaultTuningSpace,
  type EmbedTuning,
  type EmbedTrial,
  type EmbedSettings,
  type EmbedTuningSpace,
  type TuneEmbeddingOptions,
  type MachineKey,
} from './node/embed/tune.js';
export {
  readEmbeddingSet,
  writeEmbeddingSet,
  type EmbeddingSet,
  type EmbeddingSetMetadata,
} from './node/embed/embedding-set.js';

// Heads: train one from embeddings, load and save the head file, predict.
export { trainHead } from './node/train-head.js';
export type { TrainHeadOptions, MlpOptions } from './core/heads/train.js';
export { Head, UNKNOWN_LABEL, predictionJson, type Prediction, type RejectionReason } from './core/heads/head.js';
export type { HeadType } from './core/formats/head-file.js';

// A backbone and one or more heads: images in, predictions out.
export {
  Classifier,
  type ClassifierLoadOptions,
  type ClassifiedImage,
  type ClassifiedImageByHeads,
  type ClassifyManyOptions,
} from './node/classifier.js';

// How a head does on labelled photos, and in the field: drift, and re-estimating feature statistics without labels.
export { evaluateHead, type Evaluation, type OpenSetEvaluation } from './core/heads/evaluate.js';
export { driftReport, type DriftReport } from './core/heads/drift.js';
export { adaptHead, type AdaptResult } from './core/heads/adapt.js';

// Fine-tuning the backbone's last block with a linear head (the head file then carries the adapted block).
export {
  fineTuneHead,
  adaptedBackboneOptions,
  type FineTuneHeadOptions,
  type FineTuneReport,
} from './node/fine-tune.js';

// Which backbone suits these photos on this device.
export {
  selectBackbone,
  type SelectOptions,
  type SelectResult,
  type CandidateResult,
  type SelectProgress,
} from './node/select/select.js';

// Benchmarks per device profile (device-profiles/), their results, and a regression check between two results.
export { listProfiles, loadProfile, type DeviceProfile, type LoadedProfile } from './node/bench/profile.js';
export { runBench, type BenchOptions, type BenchProgress } from './node/bench/harness.js';
export { loadResults, type BenchResults } from './node/bench/results.js';
export { compareResults, type ComparisonReport } from './node/bench/compare.js';

// Deployment: backbone + head as one ONNX file for any onnxruntime, and the kiosk app server (its backbone prepared
// by prepareServedBackbone: the feature extractor the page loads).
export { exportMergedModel, type ExportModelOptions, type ExportedModel } from './node/export-model.js';
export {
  prepareServedBackbone,
  startKioskServer,
  type KioskServerOptions,
  type KioskServer,
} from './node/server/kiosk-server.js';

// The types the functions and classes above take and return, so a caller can name them (types only: nothing runs).
export type { EmbeddingBackbone, PredictionCore } from './core/contract.js';
export type { ResolvedBackbone } from './node/models/resolve.js';
export type { ModelFacts } from './core/models/inspect.js';
export type { EmbeddedRows, SkippedImage } from './node/classifier.js';
export type { EmbeddingRows } from './core/heads/train.js';
export type { HeadInit, HeadWeights, HeadOpenSet, HeadAdaptation, AdaptedBlock } from './core/heads/head.js';
export type { Normalization } from './core/heads/normalization.js';
export type {
  HeadFileContent,
  HeadBackboneRef,
  TrainingSummary,
  ParseOptions,
  SerializeOptions,
} from './core/formats/head-file.js';
export type { ServedBackbone } from './node/server/kiosk-server.js';
