/**
 * The training Web Worker: runs the shared trainHead off the page's main thread and posts progress as it goes.
 * Pure TypeScript (no onnxruntime here: import maps do not reach module workers, and a kiosk's few hundred examples
 * train in well under a second with the plain-JS dense math).
 */
import { DEFAULT_REJECT_RATE, trainHead } from '../core/heads/train.js';
import { EdgetlError, describeError } from '../core/util/errors.js';
import type { WorkerReply, WorkerRequest, WebTrainProgress } from './heads.js';

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

scope.onmessage = (event) => {
  const message = event.data;
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
    .catch((error: unknown) => {
      scope.postMessage({
        kind: 'error',
        id,
        message: describeError(error),
        code: error instanceof EdgetlError ? error.code : undefined,
      });
    });
};
