import type { PreprocessSpec } from '../preprocess/spec.js';

/** One backbone a user can obtain (bundled or downloadable), as listed in models/catalog.json. */
export interface CatalogEntry {
  /** File name without `.onnx`, e.g. `mobilenetv2-12-int8`. */
  id: string;
  file: string;
  sha256: string;
  bytes: number;
  license: string;
  /** Where the file is published; downloads come from here. Absent for files that are not downloadable. */
  url?: string;
  source: string;
  /** `pretrained` has real weights; `arch-only` has random weights (latency and graph handling only). */
  kind: 'pretrained' | 'arch-only';
  description: string;
  input: { name?: string; layout: 'NCHW' | 'NHWC' };
  preprocess: PreprocessSpec;
  /** Embedding tensor name in the source graph (absent: found automatically) and its dimension. */
  embedding: { tensor?: string; dim: number };
  /** Shipped in the package's models/ folder: present on every install, no download. */
  bundled?: boolean;
  /** Fixed batch size, when the graph does not allow others. */
  fixedBatch?: number;
  labels?: string;
  notes?: string;
}
