import {
  type AdaptationSpec,
  type HeadBackboneRef,
  type HeadFileContent,
  type HeadType,
  type NamedTensor,
  type ParseOptions,
  type SerializeOptions,
  type TrainingSummary,
  parseHeadFile,
  serializeHeadFile,
} from '../formats/head-file.js';
import type { PredictionCore } from '../contract.js';
import { EdgetlError } from '../util/errors.js';
import { ADAPTED_BLOCK_BIAS, ADAPTED_BLOCK_WEIGHT, type AdaptedBlockSection } from '../formats/adapted-block.js';
import { gemmNT } from './dense-math.js';
import type { LinearParameters } from './linear.js';
import { mlpForward, type MlpParameters } from './mlp.js';
import { type Normalization, applyNormalization, l2NormalizeInPlace } from './normalization.js';
import { type PrototypeParameters, prototypeDirections, prototypeSum } from './prototype.js';
import { softmaxRows } from './softmax.js';
import { checkHeadNumerics } from './head-numerics.js';
import { DEFAULT_MAX_HEAD_BYTES, RESERVED_LABEL } from '../formats/head-limits.js';
import { fetchWithLimits } from '../util/fetch-limits.js';
import {
  type OpenSetModel,
  OPEN_SET_METHOD,
  addClassToOpenSet,
  outlierScores,
  removeClassFromOpenSet,
} from './open-set.js';

export const UNKNOWN_LABEL = RESERVED_LABEL;

export type HeadWeights =
  | ({ type: 'linear' } & LinearParameters)
  | ({ type: 'mlp' } & MlpParameters)
  | ({ type: 'prototype' } & PrototypeParameters);

export interface HeadInit {
  labels: string[];
  backbone: HeadBackboneRef;
  weights: HeadWeights;
  normalization: Normalization;
  temperature: number;
  rejection: { threshold: number; rate: number } | null;
  training: TrainingSummary;
  openSet?: HeadOpenSet | null;
  adaptation?: HeadAdaptation | null;
  /** Notes from loading (e.g. a version 1 file without open-set data). */
  warnings?: string[];
  adaptedBlock?: AdaptedBlock;
}

/** A fine-tuned last block the head's embeddings come through (see formats/adapted-block.ts). */
export interface AdaptedBlock extends AdaptedBlockSection {
  /** [outputChannels, inputChannels] */
  weight: Float32Array;
  bias: Float32Array;
}

/** The open-set model and the threshold the head rejects at (null: scores only, never rejects). */
export type HeadOpenSet = OpenSetModel & { threshold: number | null; rate: number };

/** Field feature statistics (`edgetl adapt`): raw x becomes x * scale + shift before the head sees it. */
export interface HeadAdaptation {
  spec: AdaptationSpec;
  scale: Float32Array;
  shift: Float32Array;
}

/** Why a prediction is "unknown". */
export type RejectionReason = 'outlier' | 'low-confidence';

/** One prediction: the same contract in the library, `predict --json` and the browser API. */
export interface Prediction extends PredictionCore {
  /** The best known class, or "unknown" when the photo is unlike the training data (or below a confidence cut). */
  label: string;
  /** The best known class, always (also when `label` is "unknown"). */
  closest: string;
  /** Index into `head.labels` of `closest`. */
  index: number;
  /** Calibrated probability of `closest`. */
  score: number;
  /**
   * How unlike the training data the embedding is (cosine distance to the nearest training memory row; higher =
   * less like it). Absent for heads without open-set data (version 1 files).
   */
  outlierScore?: number;
  /** @deprecated the same as `unknown` (one name per concept); kept while the CLI and the kiosk move over. */
  rejected: boolean;
  /** Set when rejected: "outlier" (outlierScore above the head's threshold) or "low-confidence". */
  reason?: RejectionReason;
  topK: { label: string; score: number }[];
}

/** The JSON form of a prediction (`predict --json` lines, the web API): the contract's fields, in a fixed order. */
export function predictionJson(p: Prediction): {
  label: string;
  closest: string;
  score: number;
  outlierScore?: number;
  rejected: boolean;
  reason?: RejectionReason;
  topK: { label: string; score: number }[];
} {
  return {
    label: p.label,
    closest: p.closest,
    score: p.score,
    ...(p.outlierScore !== undefined ? { outlierScore: p.outlierScore } : {}),
    rejected: p.rejected,
    ...(p.reason ? { reason: p.reason } : {}),
    topK: p.topK,
  };
}

/** Pluggable storage so `Head.load`/`head.save` work on files in Node (src/node/head-io.ts) and on URLs anywhere. */
export interface HeadStorage {
  readText(location: string): Promise<string>;
  writeText?(location: string, text: string): Promise<void>;
}

// Where only fetch exists (the browser): the Node downloader's timeouts (10 s to answer, 20 s of silence mid-body)
// and the head size limit, so a silent server fails with a message instead of leaving Head.load pending forever.
let storage: HeadStorage = {
  async readText(location) {
    return new TextDecoder().decode(await fetchWithLimits(location, { maxBytes: DEFAULT_MAX_HEAD_BYTES }));
  },
};

export function setHeadStorage(next: HeadStorage): void {
  storage = next;
}

/**
 * A trained head: normalization, then a linear / MLP / prototype scorer, then temperature-calibrated softmax and
 * optional open-set rejection. Runtime-neutral; predicting one embedding is plain JS (tens of microseconds).
 */
export class Head {
  readonly type: HeadType;
  labels: string[];
  readonly backbone: HeadBackboneRef;
  readonly weights: HeadWeights;
  readonly normalization: Normalization;
  temperature: number;
  rejection: { threshold: number; rate: number } | null;
  training: TrainingSummary;
  openSet: HeadOpenSet | null;
  adaptation: HeadAdaptation | null;
  readonly warnings: string[];
  /**
   * Set when the backbone's last block was fine-tuned: embeddings must come from the adapted graph
   * (Backbone.load with `adaptedBlock`), not from the plain feature extractor.
   */
  readonly adaptedBlock: AdaptedBlock | undefined;
  /** Linear heads with standardization fold it into the weights once (fewer passes per prediction). */
  private folded: LinearParameters | undefined;
  private directions: Float32Array | undefined;

  constructor(init: HeadInit) {
    this.type = init.weights.type;
    this.labels = init.labels;
    this.backbone = init.backbone;
    this.weights = init.weights;
    this.normalization = init.normalization;
    this.temperature = init.temperature;
    this.rejection = init.rejection;
    this.training = init.training;
    this.adaptedBlock = init.adaptedBlock;
    this.openSet = init.openSet ?? null;
    this.adaptation = init.adaptation ?? null;
    this.warnings = init.warnings ?? [];
  }

  /** Raw embeddings as the head sees them: through the field adaptation when there is one. */
  private adapted(embeddings: Float32Array, rows: number): Float32Array {
    const adaptation = this.adaptation;
    if (!adaptation) return embeddings;
    const dim = this.embeddingDim;
    const out = new Float32Array(rows * dim);
    for (let r = 0; r < rows; r++) {
      const o = r * dim;
      for (let d = 0; d < dim; d++) out[o + d] = embeddings[o + d] * adaptation.scale[d] + adaptation.shift[d];
    }
    return out;
  }

  private checkRows(embeddings: Float32Array, rows: number): void {
    const dim = this.embeddingDim;
    if (!Number.isInteger(rows) || embeddings.length < rows * dim) {
      throw new EdgetlError(
        'head-input',
        `embedding length ${embeddings.length} is not a multiple of the head's embedding size ${dim} (backbone ${this.backbone.id})`,
      );
    }
  }

  /**
   * Outlier scores of `rows` raw embeddings (higher = less like the training data), or undefined for a head
   * without open-set data.
   */
  outlierScores(embeddings: Float32Array, rows = embeddings.length / this.embeddingDim): Float32Array | undefined {
    this.checkRows(embeddings, rows);
    if (!this.openSet) return undefined;
    return outlierScores(this.openSet, this.adapted(embeddings, rows), rows, this.embeddingDim);
  }

  get classCount(): number {
    return this.labels.length;
  }

  get embeddingDim(): number {
    return this.backbone.embeddingDim;
  }

  /** Uncalibrated logits [rows, classes] of `rows` raw embeddings laid out row-major. */
  logits(rawEmbeddings: Float32Array, rows = rawEmbeddings.length / this.embeddingDim): Float32Array {
    const dim = this.embeddingDim;
    this.checkRows(rawEmbeddings, rows);
    const embeddings = this.adapted(rawEmbeddings, rows);
    const classes = this.classCount;
    const weights = this.weights;
    if (weights.type === 'linear') {
      let params: LinearParameters = weights;
      let input = embeddings;
      if (this.normalization.kind === 'standardize') params = this.foldedLinear();
      else if (this.normalization.kind === 'l2') input = applyNormalization(this.normalization, embeddings, rows, dim);
      const logits = gemmNT(input, params.weight, rows, dim, classes);
      for (let r = 0; r < rows; r++) for (let c = 0; c < classes; c++) logits[r * classes + c] += params.bias[c];
      return logits;
    }
    const input = applyNormalization(this.normalization, embeddings, rows, dim);
    if (weights.type === 'prototype') {
      for (let r = 0; r < rows; r++) l2NormalizeInPlace(input, r * dim, dim);
      this.directions ??= prototypeDirections(weights);
      return gemmNT(input, this.directions, rows, dim, classes);
    }
    return mlpForward(weights, input, rows);
  }

  /** Calibrated class probabilities [rows, classes]. */
  probabilities(embeddings: Float32Array, rows = embeddings.length / this.embeddingDim): Float32Array {
    const probabilities = softmaxRows(this.logits(embeddings, rows), rows, this.classCount, this.temperature);
    // Never hand out NaN as a score: say which row and why instead.
    for (let i = 0; i < probabilities.length; i++) {
      if (!Number.isFinite(probabilities[i])) {
        const row = Math.floor(i / this.classCount);
        const input = embeddings.subarray(row * this.embeddingDim, (row + 1) * this.embeddingDim);
        const reason = input.some((v) => !Number.isFinite(v))
          ? 'the embedding holds non-finite values'
          : 'the logits overflowed (embedding values far outside the usual range?)';
        throw new EdgetlError('head-nonfinite', `the head's scores for input ${row} are not finite numbers: ${reason}`);
      }
    }
    return probabilities;
  }

  predict(embedding: Float32Array, options: { topK?: number } = {}): Prediction {
    if (embedding.length !== this.embeddingDim) {
      throw new EdgetlError(
        'head-input',
        `embedding has ${embedding.length} values but the head expects ${this.embeddingDim} (backbone ${this.backbone.id})`,
      );
    }
    return this.predictMany(embedding, 1, options)[0];
  }

  predictMany(
    embeddings: Float32Array,
    rows = embeddings.length / this.embeddingDim,
    options: { topK?: number } = {},
  ): Prediction[] {
    const probabilities = this.probabilities(embeddings, rows);
    const outliers = this.outlierScores(embeddings, rows);
    const classes = this.classCount;
    const k = Math.max(1, Math.min(options.topK ?? 1, classes));
    const outlierThreshold = this.openSet?.threshold ?? null;
    const predictions: Prediction[] = [];
    for (let r = 0; r < rows; r++) {
      const row = probabilities.subarray(r * classes, (r + 1) * classes);
      const order = topIndices(row, k);
      const index = order[0];
      const score = row[index];
      const outlierScore = outliers?.[r];
      const reason: RejectionReason | undefined =
        outlierScore !== undefined && outlierThreshold !== null && outlierScore > outlierThreshold
          ? 'outlier'
          : this.rejection !== null && score < this.rejection.threshold
            ? 'low-confidence'
            : undefined;
      const closest = this.labels[index];
      predictions.push({
        label: reason ? UNKNOWN_LABEL : closest,
        closest,
        index,
        score,
        ...(outlierScore !== undefined ? { outlierScore } : {}),
        rejected: reason !== undefined,
        ...(reason ? { reason } : {}),
        unknown: reason !== undefined,
        topK: order.map((i) => ({ label: this.labels[i], score: row[i] })),
      });
    }
    return predictions;
  }

  private foldedLinear(): LinearParameters {
    if (this.folded) return this.folded;
    const weights = this.weights as LinearParameters;
    const normalization = this.normalization as Extract<Normalization, { kind: 'standardize' }>;
    const dim = this.embeddingDim;
    const classes = this.classCount;
    const weight = new Float32Array(classes * dim);
    const bias = new Float32Array(classes);
    for (let c = 0; c < classes; c++) {
      let shift = 0;
      for (let d = 0; d < dim; d++) {
        const w = weights.weight[c * dim + d] / normalization.std[d];
        weight[c * dim + d] = w;
        shift += w * normalization.mean[d];
      }
      bias[c] = weights.bias[c] - shift;
    }
    this.folded = { weight, bias };
    return this.folded;
  }

  // ---- prototype heads: classes come and go without retraining ----

  /** Add a class (or more examples of an existing one) to a prototype head from raw embeddings. */
  addClass(label: string, embeddings: Float32Array, rows = embeddings.length / this.embeddingDim): void {
    const weights = this.requirePrototype('add a class');
    if (rows < 1 || !Number.isInteger(rows))
      throw new EdgetlError('head-input', `no embeddings given for class "${label}"`);
    if (label === UNKNOWN_LABEL)
      throw new EdgetlError(
        'head-input',
        `"${UNKNOWN_LABEL}" is reserved for rejected predictions and cannot be a class`,
      );
    const dim = this.embeddingDim;
    const contribution = prototypeSum(
      applyNormalization(this.normalization, this.adapted(embeddings, rows), rows, dim),
      rows,
      dim,
    );
    const existing = this.labels.indexOf(label);
    if (this.openSet) {
      const classIndex = existing >= 0 ? existing : this.labels.length;
      this.openSet = {
        ...this.openSet,
        ...addClassToOpenSet(this.openSet, classIndex, this.adapted(embeddings, rows), rows, dim, this.training.seed),
      };
    }
    if (existing >= 0) {
      for (let d = 0; d < dim; d++) weights.sums[existing * dim + d] += contribution[d];
      weights.counts[existing] += rows;
    } else {
      const sums = new Float32Array((this.labels.length + 1) * dim);
      sums.set(weights.sums);
      sums.set(contribution, this.labels.length * dim);
      weights.sums = sums;
      weights.counts.push(rows);
      this.labels = [...this.labels, label];
    }
    this.training.counts = { ...this.training.counts, [label]: (this.training.counts[label] ?? 0) + rows };
    this.directions = undefined;
  }

  removeClass(label: string): void {
    const weights = this.requirePrototype('remove a class');
    const index = this.labels.indexOf(label);
    if (index < 0)
      throw new EdgetlError('head-input', `the head has no class "${label}" (classes: ${this.labels.join(', ')})`);
    if (this.labels.length <= 2)
      throw new EdgetlError('head-input', `cannot remove "${label}": a head needs at least 2 classes`);
    const dim = this.embeddingDim;
    const sums = new Float32Array((this.labels.length - 1) * dim);
    sums.set(weights.sums.subarray(0, index * dim));
    sums.set(weights.sums.subarray((index + 1) * dim), index * dim);
    weights.sums = sums;
    weights.counts.splice(index, 1);
    if (this.openSet) this.openSet = { ...this.openSet, ...removeClassFromOpenSet(this.openSet, index, dim) };
    this.labels = this.labels.filter((_, i) => i !== index);
    const counts = { ...this.training.counts };
    delete counts[label];
    this.training.counts = counts;
    this.directions = undefined;
  }

  private requirePrototype(action: string): PrototypeParameters {
    if (this.weights.type !== 'prototype') {
      throw new EdgetlError(
        'head-type',
        `cannot ${action} to a ${this.type} head without retraining; train a prototype head (\`type: 'prototype'\`) for that`,
      );
    }
    return this.weights;
  }

  // ---- file format ----

  toFileContent(): HeadFileContent {
    const tensors: NamedTensor[] = [];
    const dim = this.embeddingDim;
    const classes = this.classCount;
    if (this.normalization.kind === 'standardize') {
      tensors.push({ name: 'normalization.mean', shape: [dim], data: this.normalization.mean });
      tensors.push({ name: 'normalization.std', shape: [dim], data: this.normalization.std });
    }
    const weights = this.weights;
    let parameters: HeadFileContent['parameters'];
    if (weights.type === 'linear') {
      parameters = { type: 'linear' };
      tensors.push({ name: 'linear.weight', shape: [classes, dim], data: weights.weight });
      tensors.push({ name: 'linear.bias', shape: [classes], data: weights.bias });
    } else if (weights.type === 'mlp') {
      parameters = {
        type: 'mlp',
        activation: weights.activation,
        hidden: weights.layers.slice(0, -1).map((l) => l.outputs),
      };
      weights.layers.forEach((layer, l) => {
        tensors.push({ name: `mlp.layers.${l}.weight`, shape: [layer.outputs, layer.inputs], data: layer.weight });
        tensors.push({ name: `mlp.layers.${l}.bias`, shape: [layer.outputs], data: layer.bias });
      });
    } else {
      parameters = { type: 'prototype', counts: [...weights.counts] };
      tensors.push({ name: 'prototype.sums', shape: [classes, dim], data: weights.sums });
    }
    const openSet = this.openSet;
    if (openSet) {
      tensors.push({ name: 'openSet.memory', shape: [openSet.memoryClasses.length, dim], data: openSet.memory });
      tensors.push({ name: 'openSet.mean', shape: [dim], data: openSet.featureMean });
      tensors.push({ name: 'openSet.std', shape: [dim], data: openSet.featureStd });
    }
    const adaptation = this.adaptation;
    if (adaptation) {
      tensors.push({ name: 'adaptation.scale', shape: [dim], data: adaptation.scale });
      tensors.push({ name: 'adaptation.shift', shape: [dim], data: adaptation.shift });
    }
    const { weight: blockWeight, bias: blockBias, ...adaptedBlock } = this.adaptedBlock ?? {};
    if (this.adaptedBlock) {
      tensors.push({
        name: ADAPTED_BLOCK_WEIGHT,
        shape: [this.adaptedBlock.outputChannels, this.adaptedBlock.inputChannels],
        data: blockWeight!,
      });
      tensors.push({ name: ADAPTED_BLOCK_BIAS, shape: [this.adaptedBlock.outputChannels], data: blockBias! });
    }
    return {
      type: this.type,
      labels: this.labels,
      backbone: this.backbone,
      parameters,
      normalization: { kind: this.normalization.kind },
      calibration: { temperature: this.temperature },
      rejection: this.rejection,
      training: this.training,
      openSet: openSet
        ? {
            method: openSet.method,
            k: openSet.k,
            memoryClasses: [...openSet.memoryClasses],
            memoryWeights: [...openSet.memoryWeights],
            reference: openSet.reference,
            threshold: openSet.threshold,
            rate: openSet.rate,
          }
        : null,
      adaptation: adaptation ? adaptation.spec : null,
      tensors,
      ...(this.adaptedBlock ? { adaptedBlock: adaptedBlock as AdaptedBlockSection } : {}),
    };
  }

  serialize(options: SerializeOptions = {}): string {
    return serializeHeadFile(this.toFileContent(), options);
  }

  static fromFileContent(content: HeadFileContent): Head {
    const tensor = (name: string) => content.tensors.find((t) => t.name === name)!.data;
    let normalization: Normalization;
    if (content.normalization.kind === 'standardize') {
      normalization = { kind: 'standardize', mean: tensor('normalization.mean'), std: tensor('normalization.std') };
    } else {
      normalization = { kind: content.normalization.kind };
    }
    const parameters = content.parameters;
    let weights: HeadWeights;
    if (parameters.type === 'linear') {
      weights = { type: 'linear', weight: tensor('linear.weight'), bias: tensor('linear.bias') };
    } else if (parameters.type === 'mlp') {
      const widths = [content.backbone.embeddingDim, ...parameters.hidden, content.labels.length];
      weights = {
        type: 'mlp',
        activation: parameters.activation,
        layers: widths.slice(0, -1).map((inputs, l) => ({
          inputs,
          outputs: widths[l + 1],
          weight: tensor(`mlp.layers.${l}.weight`),
          bias: tensor(`mlp.layers.${l}.bias`),
        })),
      };
    } else {
      weights = {
        type: 'prototype',
        sums: tensor('prototype.sums'),
        counts: [...parameters.counts],
        dim: content.backbone.embeddingDim,
      };
    }
    const openSet = content.openSet;
    const adaptation = content.adaptation;
    return new Head({
      labels: content.labels,
      backbone: content.backbone,
      weights,
      normalization,
      temperature: content.calibration.temperature,
      rejection: content.rejection,
      training: content.training,
      openSet: openSet
        ? {
            method: OPEN_SET_METHOD,
            k: openSet.k,
            memory: tensor('openSet.memory'),
            featureMean: tensor('openSet.mean'),
            featureStd: tensor('openSet.std'),
            memoryClasses: [...openSet.memoryClasses],
            memoryWeights: [...openSet.memoryWeights],
            reference: openSet.reference,
            threshold: openSet.threshold,
            rate: openSet.rate,
          }
        : null,
      adaptation: adaptation
        ? { spec: adaptation, scale: tensor('adaptation.scale'), shift: tensor('adaptation.shift') }
        : null,
      warnings: content.warnings,
      ...(content.adaptedBlock
        ? {
            adaptedBlock: {
              ...content.adaptedBlock,
              weight: tensor(ADAPTED_BLOCK_WEIGHT),
              bias: tensor(ADAPTED_BLOCK_BIAS),
            },
          }
        : {}),
    });
  }

  /** Parse and validate head file text (see parseHeadFile for the errors). */
  static parse(text: string, options: ParseOptions = {}): Head {
    const head = Head.fromFileContent(parseHeadFile(text, options));
    checkHeadNumerics(
      {
        labels: head.labels,
        embeddingDim: head.embeddingDim,
        weights: head.weights,
        normalization: head.normalization,
        temperature: head.temperature,
      },
      options.file,
    );
    return head;
  }

  /** Load from a file path (Node, via src/node/head-io.ts) or a URL (fetch). */
  static async load(location: string, options: Omit<ParseOptions, 'file'> = {}): Promise<Head> {
    return Head.parse(await storage.readText(location), { ...options, file: location });
  }

  /** Write atomically (Node) — a crash mid-write leaves the previous file intact. */
  async save(location: string, options: SerializeOptions = {}): Promise<void> {
    if (!storage.writeText)
      throw new EdgetlError(
        'head-write',
        `saving heads is not available in this runtime; use head.serialize() and store the text`,
      );
    await storage.writeText(location, this.serialize(options));
  }
}

function topIndices(row: Float32Array, k: number): number[] {
  const order = Array.from(row.keys());
  if (k === 1) {
    let best = 0;
    for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
    return [best];
  }
  order.sort((a, b) => row[b] - row[a] || a - b);
  return order.slice(0, k);
}
