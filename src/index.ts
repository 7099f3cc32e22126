/**
 * edgetl's public Node API. The data flows one way, and so does this file:
 * image -> tensor (preprocess) -> embedding (backbone) -> head -> prediction, then benchmarks and the kiosk server.
 * The browser API is `edgetl/web` (src/web/index.ts).
 */
export { EDGETL_VERSION } from './core/version.js';
export { EdgetlError, isEdgetlError } from './core/util/errors.js';
export { edgetlCacheDir } from './node/util/cache-dir.js';

// Models: catalog, resolution, inspection, feature-extractor surgery.
export type { CatalogEntry } from './core/models/catalog-types.js';
export {
  catalogEntries,
  findCatalogEntry,
  findCatalogEntryBySha256,
  DEFAULT_BACKBONE_ID,
} from './core/models/catalog.js';
export {
  resolveBackbone,
  locateCatalogModel,
  modelSearchLocations,
  type ResolvedBackbone,
  type ResolveOptions,
} from './node/models/resolve.js';
export { downloadFile, type DownloadOptions, type DownloadResult } from './node/models/download.js';
export { backboneSpecFor, type BackboneSpec } from './node/models/backbone-spec.js';
export { inspectModel, type ModelFacts, type TensorFacts, type EmbeddingFacts } from './core/models/inspect.js';
export { findEmbedding, type EmbeddingLocation } from './core/models/embedding.js';
export { buildFeatureExtractor, type FeatureExtractor } from './core/models/surgery.js';
export { prepareFeatureExtractor, type PreparedFeatureExtractor } from './node/models/feature-extractor-cache.js';
export { parseOnnxModel, encodeOnnxModel } from './core/models/onnx-model.js';

// Images to tensors.
export { IMAGENET_224, IMAGENET_MEAN, IMAGENET_STD, type PreprocessSpec } from './core/preprocess/spec.js';
export { resizeGeometry, tensorElementsPerImage, tensorDims, writePixelsToTensor } from './core/preprocess/tensor.js';
export { resizeBilinearPillow } from './core/preprocess/pillow-resample.js';
export {
  decodeToRgb,
  imageToTensor,
  configureSharp,
  BadImageError,
  DEFAULT_MAX_PIXELS,
  type RawImage,
  type ImageSource,
  type DecodeOptions,
  type DecodedImage,
  type ResizeKernel,
} from './node/preprocess/node-image.js';

// Execution providers: the one seam to onnxruntime-node.
export type {
  ExecutionProviderName,
  ExecutionProviderRequest,
  ExecutionOptions,
  ProviderReport,
  ProviderFallback,
  AdapterInfo,
  BackboneSession,
} from './core/execution/types.js';
export { createSession, probeSession, type CreateSessionOptions } from './node/execution/session.js';
export {
  gatherHostFacts,
  planProviders,
  describeProviderChoice,
  isExecutionProviderRequest,
  CUDA_INSTALL_COMMAND,
  assessCuda,
  type CudaAssessment,
  type CudaMissingPiece,
  type HostFacts as ProviderHostFacts,
} from './node/execution/providers.js';
// The opt-in CUDA provider install (`edgetl setup cuda`) and its load check.
export { installCudaProvider, type CudaInstallOptions, type CudaInstallReport } from './node/execution/cuda-install.js';
export { checkCudaLoads, type CudaLoadCheck } from './node/execution/cuda-load-check.js';
export {
  CUDA_PACKAGE,
  providerCoreCompatibility,
  type ProviderCoreCompatibility,
} from './node/execution/cuda-package.js';

// Embeddings: the Backbone, folders, embedding sets (NPY + JSON), the cache.
export { Backbone, type BackboneLoadOptions } from './node/embed/backbone.js';
export { embedFolder, type EmbedFolderOptions, type EmbedFolderResult } from './node/embed/embed-folder.js';
export { scanImageFolder, type ImageFolder, type DatasetItem } from './node/embed/dataset.js';
export {
  readEmbeddingSet,
  writeEmbeddingSet,
  EMBEDDING_SET_FORMAT,
  type EmbeddingSet,
  type EmbeddingSetMetadata,
} from './node/embed/embedding-set.js';
export { encodeNpy, decodeNpy, type NpyArray } from './core/formats/npy.js';
export { readNpyFile, writeNpyFile } from './node/embed/npy-file.js';
export { EmbeddingCache } from './node/embed/cache.js';
export {
  maintainEmbeddingCache,
  embeddingCacheBound,
  type MaintenanceReport,
  type EmbeddingBound,
} from './node/embed/cache-maintenance.js';
export {
  cacheInfo,
  clearCache,
  setEmbeddingCacheBound,
  CACHE_KINDS,
  type CacheKind,
  type CacheInfo,
  type ClearReport,
} from './node/cache-admin.js';

// Heads: training, the head file, prediction, and the Classifier joining a backbone and a head.
export { trainHead } from './node/train-head.js';
export type { TrainHeadOptions, MlpOptions } from './core/heads/train.js';
export {
  Head,
  UNKNOWN_LABEL,
  predictionJson,
  type Prediction,
  type RejectionReason,
  type HeadOpenSet,
} from './core/heads/head.js';
export { driftReport, driftFromScores, type DriftReport } from './core/heads/drift.js';
export { adaptHead, type AdaptResult } from './core/heads/adapt.js';
export { DEFAULT_REJECT_RATE } from './core/heads/train.js';
export { loadHead, saveHead } from './node/head-io.js';
export {
  parseHeadFile,
  serializeHeadFile,
  HEAD_FORMAT,
  HEAD_FORMAT_VERSION,
  HEAD_FORMAT_VERSIONS_READ,
  type HeadFileContent,
  type OpenSetSpec,
} from './core/formats/head-file.js';
export { classificationReport, heldOutMetrics, type ClassificationReport } from './core/heads/metrics.js';
export { exportMergedModel, type ExportModelOptions, type ExportedModel } from './node/export-model.js';
export {
  buildMergedModel,
  MERGED_METADATA,
  PROBABILITIES_OUTPUT,
  type MergedModel,
} from './core/models/merged-model.js';
export {
  Classifier,
  type ClassifierLoadOptions,
  type ClassifiedImage,
  type ClassifiedImageByHeads,
  type ClassifyManyOptions,
} from './node/classifier.js';

// Fine-tuning the backbone's last block with a linear head (the head file then carries the adapted block).
export {
  fineTuneHead,
  adaptedBackboneOptions,
  type FineTuneHeadOptions,
  type FineTuneReport,
} from './node/fine-tune.js';
export { findLastBlock, type LastBlock, type BlockActivation } from './core/models/last-block.js';
export {
  adaptedSurgery,
  cutSurgery,
  buildAdaptedExtractor,
  buildCutExtractor,
} from './core/models/last-block-graph.js';
export type { AdaptedBlock } from './core/heads/head.js';

// Benchmarks per device profile.
export { loadProfile, listProfiles, validateProfile, type DeviceProfile } from './node/bench/profile.js';
export { runBench, createResults } from './node/bench/harness.js';
export { loadResults, type BenchResults, type InferenceRun, type BudgetVerdict } from './node/bench/results.js';
export { compareResults } from './node/bench/compare.js';
export { autotune } from './node/bench/autotune.js';
export { collectHostFacts, type HostFacts } from './node/bench/host.js';
export { renderMarkdown } from './node/bench/report-markdown.js';
export { renderHtml } from './node/bench/report-html.js';

// Backbone selection: which backbone suits these photos on this device.
export {
  selectBackbone,
  type SelectOptions,
  type SelectResult,
  type CandidateResult,
  type SelectProgress,
} from './node/select/select.js';
export { renderSelectionHtml } from './node/select/report-html.js';

// The kiosk app server.
export { startKioskServer, type KioskServerOptions, type KioskServer } from './node/server/kiosk-server.js';
