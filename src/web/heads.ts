/**
 * Heads in the browser: trained in a Web Worker (the page keeps drawing and answering input), predicted on the main
 * thread. The head code and the edgetl-head format are the shared runtime-neutral ones (src/heads, src/formats):
 * a head trained here is byte-for-byte the file Node would write, and loads in Node with identical predictions.
 */
import { Head, UNKNOWN_LABEL, type Prediction } from '../core/heads/head.js';
import type { HeadBackboneRef, HeadType } from '../core/formats/head-file.js';
import type { TrainHeadOptions } from '../core/heads/train.js';
import { EdgetlError } from '../core/util/errors.js';
import type { WebBackboneInfo } from './backbone.js';
import { assertHeadFitsBackbone as checkHeadFitsBackbone } from '../core/heads/compatibility.js';
import type { PredictionCore } from '../core/contract.js';
import type { FineTuneReport } from '../core/heads/fine-tune-head.js';
import type { FineTuneActivations } from './fine-tune.js';

export type WebHeadType = HeadType;

export interface WebTrainRequest {
  /** Row-major [rows, dim]. */
  embeddings: Float32Array;
  dim: number;
  /** Class names; `targets[i]` indexes this list. The head keeps this order. */
  labels: string[];
  targets: Int32Array;
  headType: WebHeadType;
  backbone: HeadBackboneRef;
  seed?: number;
  /** Share of held-out known-class examples to reject as "unknown" (default 0.05 in the app). */
  rejectRate?: number;
  /** Any further trainHead options that survive structured cloning (no functions). */
  options?: Omit<TrainHeadOptions, 'onProgress' | 'math' | 'backbone' | 'classes' | 'type' | 'seed' | 'rejectRate'>;
}

export interface WebTrainProgress {
  stage: string;
  done: number;
  total: number;
  /** 0..1, for a progress bar. */
  fraction: number;
  /**
   * Fine-tuning: estimated seconds until this count reaches its total (the activations; or the fine-tuning steps,
   * cross-validation and final fit together), from its pace so far.
   */
  etaSeconds?: number;
}

/** Seconds left at the pace so far (none before the first step is done). */
export function secondsLeft(elapsedMs: number, done: number, total: number): number | undefined {
  return done > 0 && total >= done ? ((elapsedMs / 1000) * (total - done)) / done : undefined;
}

/** Messages between the page and src/web/worker.ts. */
export type WorkerRequest =
  | { kind: 'train'; id: number; request: WebTrainRequest }
  | { kind: 'fine-tune'; id: number; request: FineTuneActivations };
export type WorkerReply =
  | { kind: 'progress'; id: number; progress: WebTrainProgress }
  | { kind: 'done'; id: number; json: string; seconds: number; report?: FineTuneReport }
  | { kind: 'error'; id: number; message: string; code?: string };

/** The prediction contract of the library (label, closest, score, outlierScore, topK), plus every class's score. */
export interface WebPrediction extends PredictionCore {
  /** The head's outlier threshold (null: it never rejects on it). */
  outlierThreshold: number | null;
  /** @deprecated the same list as `topK` (every class, best first); kept for the kiosk app until it moves over. */
  scores: { label: string; score: number }[];
}

/** A loaded head plus the exact JSON text it came from (what export and IndexedDB keep). */
export interface WebHead {
  readonly head: Head;
  readonly json: string;
  readonly labels: string[];
  readonly type: WebHeadType;
  readonly backbone: HeadBackboneRef;
  /** Accuracy on rows the head did not fit (held-out or out-of-fold), and where it comes from. */
  readonly summary?: { validationAccuracy?: number; validationSource?: string };
  /** Notes from loading (e.g. a version 1 head without open-set data). */
  readonly warnings: readonly string[];
  predict(embedding: Float32Array, options?: { topK?: number }): WebPrediction;
}

function toWebPrediction(p: Prediction, head: Head, topK: number): WebPrediction {
  return {
    label: p.unknown ? UNKNOWN_LABEL : p.label,
    closest: p.closest,
    unknown: p.unknown,
    ...(p.reason ? { reason: p.reason } : {}),
    score: p.score,
    ...(p.outlierScore !== undefined ? { outlierScore: p.outlierScore } : {}),
    outlierThreshold: head.openSet?.threshold ?? null,
    topK: p.topK.slice(0, topK),
    scores: p.topK,
  };
}

function wrap(head: Head, json: string): WebHead {
  const heldOut = (head.training.metrics as Record<string, unknown>).heldOut;
  const accuracy = findNumber(heldOut, ['accuracy']);
  const source =
    heldOut && typeof heldOut === 'object' && typeof (heldOut as { source?: unknown }).source === 'string'
      ? (heldOut as { source: string }).source
      : undefined;
  return {
    head,
    json,
    labels: head.labels,
    type: head.type,
    backbone: head.backbone,
    summary: { validationAccuracy: accuracy, validationSource: source },
    warnings: head.warnings,
    predict: (embedding, options = {}) =>
      toWebPrediction(head.predict(embedding, { topK: head.labels.length }), head, options.topK ?? 3),
  };
}

function findNumber(value: unknown, keys: string[]): number | undefined {
  if (!value || typeof value !== 'object') return undefined;
  for (const key of keys) {
    const found = (value as Record<string, unknown>)[key];
    if (typeof found === 'number' && Number.isFinite(found)) return found;
  }
  return undefined;
}

/** Parses and validates edgetl-head text (v2, or v1 with a warning) (every field checked by the shared parser). */
export function parseWebHead(json: string, fileName = 'head file'): WebHead {
  return wrap(Head.parse(json, { file: fileName }), json);
}

/** Refuses a head made for another backbone, saying which one it needs (the kiosk's wording of heads/compatibility.ts). */
export function assertHeadFitsBackbone(
  head: WebHead,
  backbone: Pick<WebBackboneInfo, 'id' | 'sha256' | 'embeddingDim'>,
  fileName = 'the head',
): void {
  // Said to a page's user, who can act here (train) or take the head where its backbone runs; no command names.
  const remedy = `train a new head here, or use this head where ${head.backbone.id} runs`;
  checkHeadFitsBackbone(head.backbone, backbone, { what: fileName, file: fileName, givenAs: 'this page runs', remedy });
}

let nextId = 1;

type WorkerDone = Extract<WorkerReply, { kind: 'done' }>;

/**
 * One job in a dedicated module Web Worker (src/web/worker.ts): progress as it goes, the worker ended when the job
 * is done, fails or `signal` aborts (which rejects with code `aborted`). `transfer` moves buffers instead of copying.
 */
export function runInWorker(
  job: { kind: 'train'; request: WebTrainRequest } | { kind: 'fine-tune'; request: FineTuneActivations },
  options: { workerUrl: string | URL; onProgress?: (progress: WebTrainProgress) => void; signal?: AbortSignal },
  what = 'training',
  transfer: Transferable[] = [],
): Promise<WorkerDone> {
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(new EdgetlError('aborted', `${what} was cancelled`));
      return;
    }
    let worker: Worker;
    try {
      worker = new Worker(options.workerUrl, { type: 'module', name: 'edgetl-train' });
    } catch (error) {
      reject(
        new EdgetlError(
          'worker',
          `could not start the training worker (${String(options.workerUrl)}): ${String(error)}`,
        ),
      );
      return;
    }
    const id = nextId++;
    const finish = () => {
      worker.terminate();
      options.signal?.removeEventListener('abort', abort);
    };
    const abort = () => {
      finish();
      reject(new EdgetlError('aborted', `${what} was cancelled`));
    };
    options.signal?.addEventListener('abort', abort);
    worker.onmessage = (event: MessageEvent<WorkerReply>) => {
      const reply = event.data;
      if (reply.id !== id) return;
      if (reply.kind === 'progress') options.onProgress?.(reply.progress);
      else if (reply.kind === 'done') {
        finish();
        resolve(reply);
      } else {
        finish();
        reject(new EdgetlError(reply.code ?? 'train-failed', reply.message));
      }
    };
    worker.onerror = (event) => {
      finish();
      reject(
        new EdgetlError(
          'worker',
          `the training worker failed: ${event.message || 'could not load ' + String(options.workerUrl)}`,
        ),
      );
    };
    const message: WorkerRequest = { ...job, id } as WorkerRequest;
    worker.postMessage(message, transfer);
  });
}

/**
 * Trains in a dedicated Web Worker (src/web/worker.ts, served as /worker.js by `edgetl serve`): the page stays
 * responsive, progress arrives as it goes. The embeddings are copied to the worker once; the worker ends afterwards.
 */
export async function trainHeadInWorker(
  request: WebTrainRequest,
  options: { workerUrl: string | URL; onProgress?: (progress: WebTrainProgress) => void; signal?: AbortSignal },
): Promise<WebHead> {
  const reply = await runInWorker({ kind: 'train', request }, options);
  return parseWebHead(reply.json, 'the trained head');
}
