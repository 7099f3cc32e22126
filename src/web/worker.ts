/**
 * The training Web Worker: runs the shared trainHead, or the shared last-block fine-tuning on activations the page
 * computed at the cut, off the page's main thread, and posts progress as it goes. Heads train on the plain-JS dense
 * math (a kiosk's few hundred examples take well under a second). Fine-tuning's block products are far larger (0.64 G
 * multiply-adds per step of 32 MobileNetV2 images): they run on onnxruntime-web, the module the page itself uses,
 * handed over by URL because import maps do not reach module workers (execution/dense-math-web.ts;
 * bench/results/2026-12-01/web-fine-tune.md).
 */
import { DEFAULT_REJECT_RATE, trainHead } from '../core/heads/train.js';
import { fineTuneFromActivations, MemoryActivationRows } from '../core/heads/fine-tune-head.js';
import { Head } from '../core/heads/head.js';
import { EdgetlError, describeError } from '../core/util/errors.js';
import { secondsLeft, type WorkerReply, type WorkerRequest, type WebTrainProgress } from './heads.js';
import type { FineTuneActivations } from './fine-tune.js';
import { workerDenseMath } from './execution/dense-math-web.js';

interface WorkerScope {
  onmessage: ((event: MessageEvent<WorkerRequest>) => void) | null;
  postMessage(message: WorkerReply): void;
}
const scope = globalThis as unknown as WorkerScope;

/** Stages in the order trainHead reports them, weighting each stage's share of the bar. */
function overallFraction(stage: string, done: number, total: number, seen: string[]): number {
  if (!seen.includes(stage)) seen.push(stage);
  const index = seen.indexOf(stage);
  const within = total > 0 ? Math.min(1, done / total) : 0;
  // Later stages are unknown in advance: each new stage takes 70% of what is left.
  let start = 0;
  let width = 1;
  for (let i = 0; i < index; i++) {
    start += width * 0.7;
    width *= 0.3;
  }
  return Math.min(0.99, start + width * 0.7 * within);
}

function fail(id: number, error: unknown): void {
  scope.postMessage({
    kind: 'error',
    id,
    message: describeError(error),
    code: error instanceof EdgetlError ? error.code : undefined,
  });
}

/** Fine-tuning reports its steps against a total that grows or shrinks with early stopping: the bar only moves on. */
async function fineTune(id: number, request: FineTuneActivations): Promise<void> {
  const started = performance.now();
  let lastPost = 0;
  let lastStage = '';
  let fraction = 0;
  let currentCount = '';
  let countStarted = started;
  const frozen = Head.parse(request.frozenJson, { file: 'the frozen head' });
  const store = new MemoryActivationRows(request.activations, request.pixels, request.channels);
  const { math, note } = await workerDenseMath(request.math);
  const { head, report } = await fineTuneFromActivations({
    store,
    targets: request.targets,
    groups: request.groups,
    frozen,
    block: request.block,
    settings: request.settings,
    math,
    denseMathNote: note,
    dtype: request.dtype,
    activationSeconds: request.activationSeconds,
    memory: () => store.stats(),
    onProgress: (stage, done, total) => {
      // the cross-validation and final-fit stages share one step count
      const count = stage.startsWith('fine-tuning') ? 'fine-tuning' : stage;
      const now = performance.now();
      if (count !== currentCount) {
        currentCount = count;
        countStarted = now;
      }
      const etaSeconds = secondsLeft(now - countStarted, done, total);
      const within = total > 0 ? Math.min(1, done / total) : 0;
      fraction = Math.max(
        fraction,
        Math.min(0.99, stage === 'pretrained features' ? 0.1 * within : 0.1 + 0.9 * within),
      );
      if (now - lastPost < 50 && done < total && stage === lastStage) return;
      lastPost = now;
      lastStage = stage;
      scope.postMessage({ kind: 'progress', id, progress: { stage, done, total, fraction, etaSeconds } });
    },
  });
  await math.dispose?.();
  scope.postMessage({ kind: 'progress', id, progress: { stage: 'done', done: 1, total: 1, fraction: 1 } });
  scope.postMessage({
    kind: 'done',
    id,
    json: head.serialize({ dtype: request.dtype }),
    seconds: (performance.now() - started) / 1000,
    report,
  });
}

scope.onmessage = (event) => {
  const message = event.data;
  if (message.kind === 'fine-tune') {
    fineTune(message.id, message.request).catch((error: unknown) => fail(message.id, error));
    return;
  }
  if (message.kind !== 'train') return;
  const { id, request } = message;
  const started = performance.now();
  const seen: string[] = [];
  let lastPost = 0;
  const rowLabels = Array.from(request.targets, (t) => {
    const label = request.labels[t];
    if (label === undefined) throw new EdgetlError('train-input', `target ${t} has no label`);
    return label;
  });
  trainHead(request.embeddings, rowLabels, {
    ...request.options,
    type: request.headType,
    seed: request.seed ?? 0,
    classes: request.labels,
    backbone: request.backbone,
    rejectRate: request.rejectRate ?? DEFAULT_REJECT_RATE,
    onProgress: (stage, done, total) => {
      const now = performance.now();
      if (now - lastPost < 50 && done < total) return;
      lastPost = now;
      const progress: WebTrainProgress = { stage, done, total, fraction: overallFraction(stage, done, total, seen) };
      scope.postMessage({ kind: 'progress', id, progress });
    },
  })
    .then((head) => {
      // Heads that train in one step (prototype) report nothing on the way: the bar still ends full.
      scope.postMessage({ kind: 'progress', id, progress: { stage: 'done', done: 1, total: 1, fraction: 1 } });
      scope.postMessage({ kind: 'done', id, json: head.serialize(), seconds: (performance.now() - started) / 1000 });
    })
    .catch((error: unknown) => fail(id, error));
};
