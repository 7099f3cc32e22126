/**
 * The contract both runtimes implement: Node (onnxruntime-node, sharp) and the browser (onnxruntime-web, canvas).
 * Runtime-neutral types only; each side declares that it implements them, so the compiler keeps them alike.
 *
 *   session    BackboneSession   execution/session.ts (NodeBackboneSession), execution/web-session.ts (WebInferenceSession)
 *   backbone   EmbeddingBackbone embed/backbone.ts (Backbone), web/backbone.ts (WebBackbone)
 *   prediction PredictionCore    heads/head.ts (Prediction), web/heads.ts (WebPrediction)
 *   classifier                   heads/compatibility.ts: the one head/backbone check both sides run
 */
import type { ProviderReport } from './execution/types.js';
import type { PreprocessSpec } from './preprocess/spec.js';

export type { BackboneSession, ProviderReport, SessionOutput } from './execution/types.js';
export type { BackboneIdentity } from './heads/compatibility.js';

/** A frozen backbone that turns preprocessed images into embeddings. */
export interface EmbeddingBackbone {
  /** Catalog id, or the model's file name without `.onnx`. */
  readonly id: string;
  /** sha256 of the source model file (heads name their backbone by it). */
  readonly sha256: string;
  readonly embeddingDim: number;
  readonly preprocess: PreprocessSpec;
  /** Which provider runs, and why any other did not. */
  readonly provider: ProviderReport;
  /** `count` preprocessed images in the model's layout -> count x embeddingDim values, row-major. */
  embedTensors(batch: Float32Array, count: number): Promise<Float32Array>;
  /** Free the session. Safe to call twice. */
  close(): Promise<void>;
}

/** What a prediction says, in either runtime. */
export interface PredictionCore {
  /** The best known class, or "unknown" when the input is unlike the training data (or below a confidence cut). */
  label: string;
  /** The best known class, always (also when `label` is "unknown"). */
  closest: string;
  /** True when the input was refused as unknown. */
  unknown: boolean;
  /** Why it was refused: "outlier" (outlierScore above the head's threshold) or "low-confidence". */
  reason?: 'outlier' | 'low-confidence';
  /** How unlike the training data the input is (higher = less like it); absent for heads without open-set data. */
  outlierScore?: number;
  /** Calibrated probability of `closest`. */
  score: number;
  /** The best classes with their probabilities, best first. */
  topK: { label: string; score: number }[];
}
