/**
 * edgetl's public Node API. The data flows one way, and so does this file:
 * image -> tensor (preprocess) -> embedding (backbone) -> head -> prediction, then benchmarks and the kiosk server.
 * The browser API is `edgetl/web` (src/web/index.ts).
 */
export { EDGETL_VERSION } from './version.js';
export { EdgetlError, isEdgetlError } from './util/errors.js';
export { edgetlCacheDir } from './util/cache-dir.js';

// Models: catalog, resolution, inspection, feature-extractor surgery.
export type { CatalogEntry } from './models/catalog-types.js';
export { catalogEntries, findCatalogEntry, findCatalogEntryBySha256, DEFAULT_BACKBONE_ID } from './models/catalog.js';
export {
  resolveBackbone,
  locateCatalogModel,
  modelSearchLocations,
  type ResolvedBackbone,
  type ResolveOptions,
} from './models/resolve.js';
export { downloadFile, type DownloadOptions, type DownloadResult } from './models/download.js';
export { backboneSpecFor, type BackboneSpec } from './models/backbone-spec.js';
export { inspectModel, type ModelFacts, type TensorFacts, type EmbeddingFacts } from './models/inspect.js';
export { findEmbedding, type EmbeddingLocation } from './models/embedding.js';
export { buildFeatureExtractor, type FeatureExtractor } from './models/surgery.js';
export { prepareFeatureExtractor, type PreparedFeatureExtractor } from './models/feature-extractor-cache.js';
export { parseOnnxModel, encodeOnnxModel } from './models/onnx-model.js';

// Images to tensors.
export { IMAGENET_224, IMAGENET_MEAN, IMAGENET_STD, type PreprocessSpec } from './preprocess/spec.js';
export { resizeGeometry, tensorElementsPerImage, tensorDims, writePixelsToTensor } from './preprocess/tensor.js';
export { resizeBilinearPillow } from './preprocess/pillow-resample.js';
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
} from './preprocess/node-image.js';

// Execution providers: the one seam to onnxruntime-node.
export type {
  ExecutionProviderName,
  ExecutionProviderRequest,
  ExecutionOptions,
  ProviderReport,
  ProviderFallback,
  AdapterInfo,
  BackboneSession,
} from './execution/types.js';
export { createSession, probeSession, type CreateSessionOptions } from './execution/session.js';
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
} from './execution/providers.js';
// The opt-in CUDA provider install (`edgetl setup cuda`) and its load check.
export { installCudaProvider, type CudaInstallOptions, type CudaInstallReport } from './execution/cuda-install.js';
export { checkCudaLoads, type CudaLoadCheck } from './execution/cuda-load-check.js';
export { CUDA_PACKAGE, providerCoreCompatibility, type ProviderCoreCompatibility } from './execution/cuda-package.js';

// Embeddings: the Backbone, folders, embedding sets (NPY + JSON), the cache.
export { Backbone, type BackboneLoadOptions } from './embed/backbone.js';
export { embedFolder, type EmbedFolderOptions, type EmbedFolderResult } from './embed/embed-folder.js';
export { scanImageFolder, type ImageFolder, type DatasetItem } from './embed/dataset.js';
export {
  readEmbeddingSet,
  writeEmbeddingSet,
  EMBEDDING_SET_FORMAT,
  type EmbeddingSet,
  type EmbeddingSetMetadata,
} from './embed/embedding-set.js';
export { encodeNpy, decodeNpy, type NpyArray } from './embed/npy.js';
export { readNpyFile, writeNpyFile } from './embed/npy-file.js';
export { EmbeddingCache } from './embed/cache.js';
export { maintainEmbeddingCache, embeddingCacheBound, type MaintenanceReport, type EmbeddingBound } from './embed/cache-maintenance.js';
export { cacheInfo, clearCache, setEmbeddingCacheBound, CACHE_KINDS, type CacheKind, type CacheInfo, type ClearReport } from './cache-admin.js';

// Heads: training, the head file, prediction, and the Classifier joining a backbone and a head.
export { trainHead } from './train-head.js';
export type { TrainHeadOptions, MlpOptions } from './heads/train.js';
export { Head, UNKNOWN_LABEL, predictionJson, type Prediction, type RejectionReason, type HeadOpenSet } from './heads/head.js';
export { driftReport, driftFromScores, type DriftReport } from './heads/drift.js';
export { adaptHead, type AdaptResult } from './heads/adapt.js';
export { DEFAULT_REJECT_RATE } from './heads/train.js';
export { loadHead, saveHead } from './head-io.js';
export {
  parseHeadFile,
  serializeHeadFile,
  HEAD_FORMAT,
  HEAD_FORMAT_VERSION,
  HEAD_FORMAT_VERSIONS_READ,
  type HeadFileContent,
  type OpenSetSpec,
} from './formats/head-file.js';
export { classificationReport, heldOutMetrics, type ClassificationReport } from './heads/metrics.js';
export { exportMergedModel, type ExportModelOptions, type ExportedModel } from './export-model.js';
export { buildMergedModel, MERGED_METADATA, PROBABILITIES_OUTPUT, type MergedModel } from './models/merged-model.js';
export { Classifier, type ClassifierLoadOptions, type ClassifiedImage, type ClassifiedImageByHeads, type ClassifyManyOptions } from './classifier.js';

// Fine-tuning the backbone's last block with a linear head (the head file then carries the adapted block).
export { fineTuneHead, adaptedBackboneOptions, type FineTuneHeadOptions, type FineTuneReport } from './fine-tune.js';
export { findLastBlock, type LastBlock, type BlockActivation } from './models/last-block.js';
export { adaptedSurgery, cutSurgery, buildAdaptedExtractor, buildCutExtractor } from './models/last-block-graph.js';
export type { AdaptedBlock } from './heads/head.js';

// Benchmarks per device profile.
export { loadProfile, listProfiles, validateProfile, type DeviceProfile } from './bench/profile.js';
export { runBench, createResults } from './bench/harness.js';
export { loadResults, type BenchResults, type InferenceRun, type BudgetVerdict } from './bench/results.js';
export { compareResults } from './bench/compare.js';
export { autotune } from './bench/autotune.js';
export { collectHostFacts, type HostFacts } from './bench/host.js';
export { renderMarkdown } from './bench/report-markdown.js';
export { renderHtml } from './bench/report-html.js';

// Backbone selection: which backbone suits these photos on this device.
export { selectBackbone, type SelectOptions, type SelectResult, type CandidateResult, type SelectProgress } from './select/select.js';
export { renderSelectionHtml } from './select/report-html.js';

// The kiosk app server.
export { startKioskServer, type KioskServerOptions, type KioskServer } from './web/server.js';
