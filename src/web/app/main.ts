/**
 * The kiosk app: collect examples per class (files, drops, camera), train a head in a Web Worker, predict live.
 * It builds on the browser modules (web/backbone.ts, web/heads.ts, web/storage.ts, execution/web-session.ts), the
 * same ones src/web/index.ts exports, and adds the page around them.
 */
import { WebBackbone } from '../backbone.js';
import {
  assertHeadFitsBackbone,
  parseWebHead,
  trainHeadInWorker,
  type WebHead,
  type WebHeadType,
  type WebPrediction,
} from '../heads.js';
import { downloadText, openEdgetlStore, type EdgetlStore, type StoredExamples } from '../storage.js';
import { describeAdapter, onnxruntimeWebVersion, type WebProviderRequest } from '../execution/web-session.js';
import type { PreprocessSpec } from '../../core/preprocess/spec.js';
import { describeError } from '../../core/util/errors.js';
import { driftFromScores } from '../../core/heads/drift.js';

/** What `edgetl serve` tells the page (GET /api/config). */
interface ServerConfig {
  version: string;
  backbone: {
    id: string;
    sha256: string;
    modelUrl: string;
    outputName: string;
    embeddingDim: number;
    preprocess: PreprocessSpec;
    fixedBatch?: number;
    description?: string;
  };
  /** URL of a head the operator passed with `--head`, if any. */
  headUrl?: string;
  /** Every head passed with `--head` (the first is `headUrl`); the others predict beside it from the same embedding. */
  heads?: { name: string; url: string }[];
  ortUrl: string;
}

interface ClassExamples {
  id: number;
  name: string;
  embeddings: Float32Array[];
  thumbs: string[];
  card?: ClassCard;
}

interface ClassCard {
  root: HTMLLIElement;
  name: HTMLInputElement;
  count: HTMLElement;
  thumbs: HTMLElement;
  files: HTMLInputElement;
  capture: HTMLButtonElement;
}

const MAX_THUMBS = 12;
const MIN_PER_CLASS = 2;

function byId<T extends HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`page is missing #${id}`);
  return element as T;
}

const ui = {
  modelStatus: byId<HTMLParagraphElement>('model-status'),
  error: byId<HTMLDivElement>('error'),
  errorText: byId<HTMLParagraphElement>('error-text'),
  errorDismiss: byId<HTMLButtonElement>('error-dismiss'),
  classes: byId<HTMLOListElement>('classes'),
  addClass: byId<HTMLButtonElement>('add-class'),
  headType: byId<HTMLSelectElement>('head-type'),
  train: byId<HTMLButtonElement>('train-button'),
  trainProgress: byId<HTMLProgressElement>('train-progress'),
  trainStatus: byId<HTMLParagraphElement>('train-status'),
  exportHead: byId<HTMLButtonElement>('export-head'),
  importHead: byId<HTMLInputElement>('import-head'),
  camera: byId<HTMLVideoElement>('camera'),
  testImage: byId<HTMLImageElement>('test-image'),
  placeholder: byId<HTMLParagraphElement>('camera-placeholder'),
  cameraToggle: byId<HTMLButtonElement>('camera-toggle'),
  testFile: byId<HTMLInputElement>('test-file'),
  predictionLabel: byId<HTMLParagraphElement>('prediction-label'),
  predictionBars: byId<HTMLUListElement>('prediction-bars'),
  otherHeads: byId<HTMLUListElement>('other-heads'),
  predictionReason: byId<HTMLParagraphElement>('prediction-reason'),
  driftWarning: byId<HTMLParagraphElement>('drift-warning'),
  deviceFacts: byId<HTMLDListElement>('device-facts'),
  template: byId<HTMLTemplateElement>('class-template'),
};

const state = {
  config: undefined as ServerConfig | undefined,
  backbone: undefined as WebBackbone | undefined,
  loadMs: 0,
  classes: [] as ClassExamples[],
  nextClassId: 0,
  head: undefined as WebHead | undefined,
  /** The served heads after the first: shown beside the main prediction, computed from the same embedding. */
  otherHeads: [] as { name: string; head: WebHead }[],
  otherPredictions: [] as { name: string; prediction: WebPrediction }[],
  store: undefined as EdgetlStore | undefined,
  stream: undefined as MediaStream | undefined,
  live: false,
  busy: Promise.resolve() as Promise<unknown>,
  embedMs: [] as number[],
  preprocessMs: [] as number[],
  /** The page's own share of preprocessMs (all of it when preprocessing runs on the page). */
  preprocessPageMs: [] as number[],
  inferenceMs: [] as number[],
  headMs: [] as number[],
  /** The photo on show for classification: embedded from the file itself, so the worker decodes it, not the page. */
  testFile: undefined as File | undefined,
  /** Outlier scores of the last camera frames, for the drift warning. */
  liveScores: [] as number[],
  training: false,
};

/** Camera frames the drift warning looks back over, and how many it needs before it says anything. */
const DRIFT_WINDOW = 30;
const DRIFT_MIN_FRAMES = 15;

// ---------------------------------------------------------------- errors

function showError(message: string): void {
  ui.errorText.textContent = message;
  ui.error.hidden = false;
}
ui.errorDismiss.addEventListener('click', () => {
  ui.error.hidden = true;
});

function cameraErrorMessage(error: unknown): string {
  const name = error instanceof DOMException ? error.name : '';
  if (!window.isSecureContext) {
    return 'The camera only works on a secure page: open this page as http://localhost or http://127.0.0.1 on the computer that runs the kiosk, or over https.';
  }
  if (name === 'NotAllowedError' || name === 'SecurityError') {
    return 'Camera permission was denied. Allow the camera for this page (the camera icon in the address bar, or the browser\'s site settings), then press "Start camera" again. You can still add photos from files.';
  }
  if (name === 'NotFoundError' || name === 'OverconstrainedError')
    return 'No camera was found. Connect one and press "Start camera" again, or add photos from files.';
  if (name === 'NotReadableError' || name === 'AbortError')
    return 'The camera is in use by another program or could not start. Close the other program and press "Start camera" again.';
  return `The camera could not start: ${describeError(error)}`;
}

// ---------------------------------------------------------------- classes

function addClass(name: string, embeddings: Float32Array[] = []): ClassExamples {
  const examples: ClassExamples = { id: state.nextClassId++, name, embeddings, thumbs: [] };
  state.classes.push(examples);
  renderClassCard(examples);
  return examples;
}

function renderClassCard(examples: ClassExamples): void {
  const fragment = ui.template.content.cloneNode(true) as DocumentFragment;
  const root = fragment.querySelector('li') as HTMLLIElement;
  const ref = <T extends HTMLElement>(key: string) => root.querySelector(`[data-ref="${key}"]`) as T;
  root.id = `class-${examples.id}`;
  root.dataset.classId = String(examples.id);
  const name = ref<HTMLInputElement>('name');
  const nameLabel = ref<HTMLLabelElement>('name-label');
  const files = ref<HTMLInputElement>('files');
  const fileButton = ref<HTMLButtonElement>('file-button');
  name.id = `class-name-${examples.id}`;
  nameLabel.htmlFor = name.id;
  nameLabel.textContent = `Name of class ${examples.id + 1}`;
  name.value = examples.name;
  files.id = `class-files-${examples.id}`;
  fileButton.id = `class-add-${examples.id}`;
  const card: ClassCard = { root, name, count: ref('count'), thumbs: ref('thumbs'), files, capture: ref('capture') };
  examples.card = card;
  name.addEventListener('input', () => {
    examples.name = name.value.trim() || `Class ${examples.id + 1}`;
    fileButton.setAttribute('aria-label', `Add photos to ${examples.name}`);
    void persistExamples();
    updateTrainButton();
  });
  fileButton.setAttribute('aria-label', `Add photos to ${examples.name}`);
  // A real button (focusable, Enter/Space/tap) opens the hidden file input.
  fileButton.addEventListener('click', () => files.click());
  files.addEventListener('change', () => {
    const chosen = Array.from(files.files ?? []);
    files.value = '';
    void addFiles(examples, chosen);
  });
  card.capture.addEventListener('click', () => void captureExample(examples));
  ref<HTMLButtonElement>('clear').addEventListener('click', () => {
    examples.embeddings = [];
    for (const url of examples.thumbs) if (url.startsWith('blob:')) URL.revokeObjectURL(url);
    examples.thumbs = [];
    updateCard(examples);
    void persistExamples();
  });
  ref<HTMLButtonElement>('remove').addEventListener('click', () => {
    if (state.classes.length <= 2) {
      showError('Keep at least two classes: a head needs two or more to tell apart. Rename or clear this one instead.');
      return;
    }
    state.classes = state.classes.filter((c) => c !== examples);
    root.remove();
    updateTrainButton();
    void persistExamples();
  });
  for (const type of ['dragenter', 'dragover']) {
    root.addEventListener(type, (event) => {
      event.preventDefault();
      root.classList.add('dragover');
    });
  }
  root.addEventListener('dragleave', () => root.classList.remove('dragover'));
  root.addEventListener('drop', (event) => {
    event.preventDefault();
    root.classList.remove('dragover');
    const dropped = Array.from((event as DragEvent).dataTransfer?.files ?? []).filter(
      (f) => f.type.startsWith('image/') || f.type === '',
    );
    void addFiles(examples, dropped);
  });
  ui.classes.append(root);
  updateCard(examples);
}

function updateCard(examples: ClassExamples): void {
  const card = examples.card;
  if (!card) return;
  const n = examples.embeddings.length;
  card.count.textContent = `${n} photo${n === 1 ? '' : 's'}`;
  card.count.dataset.enough = String(n >= MIN_PER_CLASS);
  card.root.dataset.count = String(n);
  card.thumbs.replaceChildren(
    ...examples.thumbs.slice(-MAX_THUMBS).map((src) => {
      const img = document.createElement('img');
      img.src = src;
      img.alt = '';
      return img;
    }),
  );
  if (n > examples.thumbs.slice(-MAX_THUMBS).length && n > 0) {
    const more = document.createElement('span');
    more.className = 'more';
    more.textContent = `${n} in all`;
    card.thumbs.append(more);
  }
  card.capture.disabled = !state.stream || !state.backbone;
  updateTrainButton();
}

/** Serializes work on the backbone so camera predictions and example embedding never interleave. */
function exclusive<T>(task: () => Promise<T>): Promise<T> {
  const run = state.busy.then(task, task);
  state.busy = run.catch(() => undefined);
  return run;
}

async function addFiles(examples: ClassExamples, files: File[]): Promise<void> {
  const backbone = state.backbone;
  if (!backbone || files.length === 0) return;
  setTrainStatus(`Reading ${files.length} photo${files.length === 1 ? '' : 's'} for ${examples.name}…`);
  await exclusive(async () => {
    let added = 0;
    const skipped: string[] = [];
    for (const file of files) {
      try {
        const started = performance.now();
        const embedding = await backbone.embed(file);
        recordEmbed(backbone, performance.now() - started);
        examples.embeddings.push(embedding);
        examples.thumbs.push(URL.createObjectURL(file));
        added++;
        updateCard(examples);
      } catch (error) {
        skipped.push(`${file.name}: ${describeError(error)}`);
      }
    }
    if (skipped.length)
      showError(
        `Skipped ${skipped.length} file${skipped.length === 1 ? '' : 's'} that are not readable images:\n${skipped.slice(0, 5).join('\n')}`,
      );
    setTrainStatus(`${examples.name}: added ${added} photo${added === 1 ? '' : 's'}.`);
  });
  renderDevice();
  await persistExamples();
}

async function captureExample(examples: ClassExamples): Promise<void> {
  const backbone = state.backbone;
  if (!backbone || !state.stream) return;
  await exclusive(async () => {
    const video = ui.camera;
    const started = performance.now();
    const embedding = await backbone.embed(video);
    recordEmbed(backbone, performance.now() - started);
    examples.embeddings.push(embedding);
    const canvas = document.createElement('canvas');
    canvas.width = 104;
    canvas.height = Math.round((104 * video.videoHeight) / Math.max(1, video.videoWidth)) || 78;
    canvas.getContext('2d')?.drawImage(video, 0, 0, canvas.width, canvas.height);
    examples.thumbs.push(canvas.toDataURL('image/jpeg', 0.7));
    updateCard(examples);
  });
  renderDevice();
  await persistExamples();
}

// ---------------------------------------------------------------- training

function setTrainStatus(text: string, kind: 'info' | 'done' | 'error' = 'info'): void {
  ui.trainStatus.textContent = text;
  ui.trainStatus.dataset.state = kind;
}

function readyClasses(): ClassExamples[] {
  return state.classes.filter((c) => c.embeddings.length > 0);
}

function updateTrainButton(): void {
  const ready = readyClasses();
  const enough = ready.length >= 2 && ready.every((c) => c.embeddings.length >= MIN_PER_CLASS);
  ui.train.disabled = !state.backbone || state.training || !enough;
  if (!state.training && !state.head && state.backbone) {
    if (ready.length < 2) setTrainStatus('Add examples to at least two classes.');
    else if (!enough) setTrainStatus(`Each class with photos needs at least ${MIN_PER_CLASS}.`);
    else setTrainStatus(`Ready to train on ${ready.reduce((n, c) => n + c.embeddings.length, 0)} photos.`);
  }
}

async function train(): Promise<void> {
  const backbone = state.backbone;
  if (!backbone || state.training) return;
  const classes = readyClasses();
  const names = classes.map((c) => c.name);
  const duplicate = names.find((n, i) => names.indexOf(n) !== i);
  if (duplicate) {
    showError(`Two classes are both called "${duplicate}". Give each class its own name, then train.`);
    return;
  }
  const rows = classes.reduce((n, c) => n + c.embeddings.length, 0);
  const dim = backbone.info.embeddingDim;
  const embeddings = new Float32Array(rows * dim);
  const targets = new Int32Array(rows);
  let row = 0;
  classes.forEach((c, target) => {
    for (const e of c.embeddings) {
      embeddings.set(e, row * dim);
      targets[row++] = target;
    }
  });
  state.training = true;
  updateTrainButton();
  ui.trainProgress.hidden = false;
  ui.trainProgress.value = 0;
  setTrainStatus('Training…');
  const started = performance.now();
  try {
    const head = await trainHeadInWorker(
      {
        embeddings,
        dim,
        labels: names,
        targets,
        headType: ui.headType.value as WebHeadType,
        backbone: {
          id: backbone.info.id,
          sha256: backbone.info.sha256,
          embeddingDim: dim,
          preprocess: backbone.info.preprocess,
        },
      },
      {
        workerUrl: new URL('/worker.js', location.href),
        onProgress: (p) => {
          ui.trainProgress.value = p.fraction;
          setTrainStatus(`Training… ${p.stage} ${Math.round(p.fraction * 100)}%`);
        },
      },
    );
    const seconds = (performance.now() - started) / 1000;
    await useHead(head, 'trained');
    setTrainStatus(
      `Trained a ${head.type} head on ${rows} photos in ${seconds.toFixed(1)} s.${describeHeadQuality(head)}`,
      'done',
    );
  } catch (error) {
    setTrainStatus(`Training failed: ${describeError(error)}`, 'error');
  } finally {
    state.training = false;
    ui.trainProgress.value = 1;
    updateTrainButton();
  }
}

function describeHeadQuality(head: WebHead): string {
  const accuracy = head.summary?.validationAccuracy;
  const source = head.summary?.validationSource;
  return accuracy === undefined
    ? ''
    : ` Accuracy on examples it did not fit: ${(accuracy * 100).toFixed(0)}%${source ? ` (${source})` : ''}.`;
}

async function useHead(head: WebHead, how: 'trained' | 'imported' | 'restored' | 'served'): Promise<void> {
  state.head = head;
  state.liveScores = [];
  renderDrift();
  ui.exportHead.disabled = false;
  document.body.dataset.head = 'ready';
  if (how !== 'restored')
    await state.store
      ?.saveHead('current', head.json)
      .catch((error: unknown) =>
        showError(
          `The head works but could not be saved in this browser: ${describeError(error)}. Export it to keep it.`,
        ),
      );
  if (how !== 'trained')
    setTrainStatus(
      `Using a ${how} ${head.type} head: ${head.labels.join(', ')}.${head.warnings.length ? ` Note: ${head.warnings.join(' ')}` : ''}`,
      'done',
    );
  renderPrediction(undefined);
  if (!ui.testImage.hidden && ui.testImage.dataset.ready === 'true') void classifyTestImage();
}

function exportHead(): void {
  if (!state.head) return;
  const name = `edgetl-head-${state.head.labels
    .map((l) => l.replace(/[^\w-]+/g, '_'))
    .join('-')
    .slice(0, 60)}.json`;
  downloadText(state.head.json, name, 'application/json');
}

async function importHead(file: File): Promise<void> {
  const backbone = state.backbone;
  if (!backbone) return;
  try {
    const head = parseWebHead(await file.text(), file.name);
    assertHeadFitsBackbone(head, backbone.info, file.name);
    await useHead(head, 'imported');
  } catch (error) {
    showError(describeError(error));
  }
}

// ---------------------------------------------------------------- prediction

function recordEmbed(backbone: WebBackbone, totalMs: number): void {
  recordLatency(state.embedMs, totalMs);
  if (backbone.lastTimings) {
    recordLatency(state.preprocessMs, backbone.lastTimings.preprocessMs);
    recordLatency(state.preprocessPageMs, backbone.lastTimings.preprocessCallerMs);
    recordLatency(state.inferenceMs, backbone.lastTimings.inferenceMs);
  }
}

function recordLatency(list: number[], ms: number): void {
  list.push(ms);
  if (list.length > 30) list.shift();
}

function median(values: number[]): number | undefined {
  if (!values.length) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function predictFrom(source: HTMLVideoElement | HTMLImageElement | Blob): Promise<WebPrediction | undefined> {
  const backbone = state.backbone;
  const head = state.head;
  if (!backbone || !head) return undefined;
  return exclusive(async () => {
    const t0 = performance.now();
    const embedding = await backbone.embed(source);
    const t1 = performance.now();
    const prediction = head.predict(embedding);
    const t2 = performance.now();
    state.otherPredictions = state.otherHeads.map((other) => ({
      name: other.name,
      prediction: other.head.predict(embedding),
    }));
    recordEmbed(backbone, t1 - t0);
    recordLatency(state.headMs, t2 - t1);
    return prediction;
  });
}

function renderPrediction(prediction: WebPrediction | undefined): void {
  const label = ui.predictionLabel;
  if (!prediction) {
    label.dataset.state = 'idle';
    label.textContent = state.head
      ? 'Show the camera something, or classify a photo.'
      : 'Train or import a head first.';
    ui.predictionReason.textContent = '';
    ui.predictionReason.hidden = true;
    ui.predictionBars.replaceChildren();
    ui.otherHeads.replaceChildren();
    return;
  }
  ui.otherHeads.replaceChildren(
    ...state.otherPredictions.map(({ name, prediction: other }) => {
      const item = document.createElement('li');
      item.dataset.head = name;
      item.dataset.label = other.unknown ? '' : other.label;
      item.textContent = `${name}: ${other.unknown ? `unknown (closest ${other.scores[0]?.label ?? '?'})` : other.label} ${Math.round(other.score * 100)}%`;
      return item;
    }),
  );
  label.dataset.state = prediction.unknown ? 'unknown' : 'known';
  label.dataset.label = prediction.unknown ? '' : prediction.label;
  label.dataset.reason = prediction.reason ?? '';
  label.dataset.closest = prediction.closest;
  label.textContent = prediction.unknown
    ? `Unknown (closest: ${prediction.closest}, ${Math.round(prediction.score * 100)}%)`
    : `${prediction.label} (${Math.round(prediction.score * 100)}%)`;
  ui.predictionReason.hidden = !prediction.unknown;
  ui.predictionReason.textContent = !prediction.unknown
    ? ''
    : prediction.reason === 'outlier'
      ? 'Not like the examples: this looks unlike every photo the head was trained on. Add it as examples (or to a "nothing" class) if it should be recognised.'
      : 'Not sure: the head cannot tell between its classes here.';
  ui.predictionBars.replaceChildren(
    ...prediction.scores.map((s, i) => {
      const item = document.createElement('li');
      item.className = 'bar';
      item.dataset.top = String(i === 0 && !prediction.unknown);
      const name = document.createElement('span');
      name.className = 'name';
      name.textContent = s.label;
      const track = document.createElement('span');
      track.className = 'track';
      track.setAttribute('role', 'meter');
      track.setAttribute('aria-label', s.label);
      track.setAttribute('aria-valuemin', '0');
      track.setAttribute('aria-valuemax', '100');
      track.setAttribute('aria-valuenow', String(Math.round(s.score * 100)));
      const fill = document.createElement('span');
      fill.className = 'fill';
      fill.style.width = `${(s.score * 100).toFixed(1)}%`;
      fill.style.display = 'block';
      track.append(fill);
      const value = document.createElement('span');
      value.className = 'value';
      value.textContent = `${Math.round(s.score * 100)}%`;
      item.append(name, track, value);
      return item;
    }),
  );
}

async function classifyTestImage(): Promise<void> {
  try {
    const prediction = await predictFrom(state.testFile ?? ui.testImage);
    renderPrediction(prediction);
  } catch (error) {
    showError(`Could not classify the photo: ${describeError(error)}`);
  }
  renderDevice();
}

async function showTestFile(file: File): Promise<void> {
  stopCamera();
  const url = URL.createObjectURL(file);
  state.testFile = undefined;
  ui.testImage.dataset.ready = 'false';
  ui.testImage.hidden = false;
  ui.placeholder.hidden = true;
  try {
    ui.testImage.src = url;
    await ui.testImage.decode();
  } catch {
    showError(`${file.name} is not an image this browser can show.`);
    return;
  }
  ui.testImage.dataset.ready = 'true';
  state.testFile = file;
  if (!state.head) {
    renderPrediction(undefined);
    return;
  }
  await classifyTestImage();
}

async function startCamera(): Promise<void> {
  if (!navigator.mediaDevices?.getUserMedia) {
    showError(cameraErrorMessage(new DOMException('no mediaDevices', 'NotSupportedError')));
    return;
  }
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: 'environment' },
      audio: false,
    });
  } catch (error) {
    showError(cameraErrorMessage(error));
    return;
  }
  ui.camera.srcObject = state.stream;
  await ui.camera.play().catch(() => undefined);
  ui.camera.dataset.live = 'true';
  ui.testImage.hidden = true;
  ui.placeholder.hidden = true;
  ui.cameraToggle.textContent = 'Stop camera';
  state.classes.forEach(updateCard);
  state.live = true;
  void liveLoop();
}

function stopCamera(): void {
  state.live = false;
  state.stream?.getTracks().forEach((t) => t.stop());
  state.stream = undefined;
  ui.camera.srcObject = null;
  ui.camera.dataset.live = 'false';
  ui.cameraToggle.textContent = 'Start camera';
  if (ui.testImage.hidden) ui.placeholder.hidden = false;
  state.classes.forEach(updateCard);
}

/**
 * One prediction in flight at a time, as fast as the device allows, with a short breather between frames so taps
 * and training progress stay responsive on slow devices.
 */
async function liveLoop(): Promise<void> {
  let frames = 0;
  while (state.live) {
    if (state.head && ui.camera.readyState >= 2) {
      try {
        const prediction = await predictFrom(ui.camera);
        renderPrediction(prediction);
        if (prediction?.outlierScore !== undefined) {
          state.liveScores.push(prediction.outlierScore);
          if (state.liveScores.length > DRIFT_WINDOW) state.liveScores.shift();
          renderDrift();
        }
      } catch (error) {
        showError(`Live prediction stopped: ${describeError(error)}`);
        stopCamera();
        return;
      }
      if (++frames % 10 === 0) renderDevice();
    }
    await new Promise((resolve) => setTimeout(resolve, state.head ? 30 : 250));
  }
}

/** Warns when the camera view has drifted from the examples (most recent frames unlike them). */
function renderDrift(): void {
  const openSet = state.head?.head.openSet;
  const scores = state.liveScores;
  if (!openSet || scores.length < DRIFT_MIN_FRAMES) {
    ui.driftWarning.hidden = true;
    document.body.dataset.drift = 'false';
    return;
  }
  const report = driftFromScores(openSet, scores);
  document.body.dataset.drift = String(report.drifted);
  ui.driftWarning.hidden = !report.drifted;
  if (report.drifted) {
    const share =
      report.overThreshold === null
        ? ''
        : `${Math.round(report.overThreshold * 100)}% of the last ${scores.length} frames`;
    ui.driftWarning.textContent = `The camera view has drifted from the examples: ${share || 'recent frames'} look unlike them. Check the light and the framing, or add examples taken here and train again.`;
  }
}

// ---------------------------------------------------------------- device panel

function renderDevice(): void {
  const facts: [string, string][] = [];
  const notes: string[] = [];
  const backbone = state.backbone;
  const config = state.config;
  if (config) facts.push(['Backbone', `${config.backbone.id} (${config.backbone.embeddingDim}-d)`]);
  if (backbone) {
    const report = backbone.report;
    facts.push(['Provider', report.used === 'webgpu' ? 'WebGPU' : 'WebAssembly (CPU)']);
    facts.push(['Requested', report.requested]);
    if (report.adapter)
      facts.push([
        'Adapter',
        `${describeAdapter(report.adapter)}${report.adapter.software ? ' (software: correctness only)' : ''}`,
      ]);
    facts.push(['WASM threads', String(report.wasmThreads)]);
    if (report.used === 'wasm')
      facts.push(['Inference in a worker', report.proxyWorker ? 'yes (page stays responsive)' : 'no']);
    facts.push(['Cross-origin isolated', report.crossOriginIsolated ? 'yes' : 'no']);
    facts.push(['Model load', `${Math.round(state.loadMs)} ms`]);
    for (const f of report.fallbacks) notes.push(`Not ${f.provider}: ${f.reason}`);
    notes.push(...report.notes);
  }
  const ms = (values: number[]) => {
    const m = median(values);
    return m === undefined ? '–' : `${m < 0.1 ? m.toFixed(3) : m < 10 ? m.toFixed(2) : m.toFixed(1)} ms`;
  };
  facts.push([
    'Image → embedding',
    state.embedMs.length ? `${ms(state.embedMs)} (median of last ${state.embedMs.length})` : '–',
  ]);
  if (backbone) {
    const where = backbone.preprocessing;
    const resize = where.resize === 'wasm-simd' ? 'WebAssembly SIMD resize' : 'JavaScript resize';
    facts.push([
      'Preprocessing',
      where.where === 'worker' ? `in a Web Worker (${resize})` : `on the page's main thread (${resize})`,
    ]);
    if (where.reason && where.where === 'main-thread')
      notes.push(`Preprocessing is not in a worker: ${where.reason}. The page may stutter while it works.`);
  }
  facts.push(['Preprocess', ms(state.preprocessMs)]);
  facts.push(['Preprocess on the page', ms(state.preprocessPageMs)]);
  facts.push(['Backbone inference', ms(state.inferenceMs)]);
  facts.push(['Head', ms(state.headMs)]);
  facts.push(['onnxruntime-web', onnxruntimeWebVersion() ?? '?']);
  if (config) facts.push(['edgetl', config.version]);
  const nodes: HTMLElement[] = [];
  for (const [term, value] of facts) {
    const dt = document.createElement('dt');
    dt.textContent = term;
    const dd = document.createElement('dd');
    dd.textContent = value;
    dd.dataset.fact = term.toLowerCase().replace(/[^a-z]+/g, '-');
    nodes.push(dt, dd);
  }
  for (const note of notes) {
    const p = document.createElement('dd');
    p.className = 'note';
    p.textContent = note;
    nodes.push(p);
  }
  ui.deviceFacts.replaceChildren(...nodes);
}

// ---------------------------------------------------------------- persistence

async function persistExamples(): Promise<void> {
  const store = state.store;
  const backbone = state.backbone;
  if (!store || !backbone) return;
  const record: StoredExamples = {
    backboneSha256: backbone.info.sha256,
    embeddingDim: backbone.info.embeddingDim,
    classes: state.classes.map((c) => ({ name: c.name, embeddings: c.embeddings })),
  };
  await store.saveExamples(record).catch(() => undefined);
}

async function restore(): Promise<void> {
  const store = state.store;
  const backbone = state.backbone;
  if (!backbone) return;
  const examples = store ? await store.loadExamples().catch(() => undefined) : undefined;
  if (examples && examples.backboneSha256 === backbone.info.sha256 && examples.classes.length >= 2) {
    for (const c of examples.classes) addClass(c.name, c.embeddings);
  } else {
    addClass('Class 1');
    addClass('Class 2');
  }
  const served = state.config?.headUrl;
  if (served) {
    try {
      const response = await fetch(served);
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const head = parseWebHead(await response.text(), served);
      assertHeadFitsBackbone(head, backbone.info, 'the head this kiosk was set up with');
      // The other heads first: the page reports itself ready (data-head) once the main one is in use.
      await loadOtherHeads(backbone);
      await useHead(head, 'served');
      return;
    } catch (error) {
      showError(describeError(error));
    }
  }
  const saved = store ? await store.loadHead('current').catch(() => undefined) : undefined;
  if (saved) {
    try {
      const head = parseWebHead(saved, 'the head saved in this browser');
      assertHeadFitsBackbone(head, backbone.info, 'the head saved in this browser');
      await useHead(head, 'restored');
      setTrainStatus(
        `Restored the last ${head.type} head (${head.labels.join(', ')}). Train again to replace it.`,
        'done',
      );
    } catch {
      // A saved head for another backbone is simply not used; the user can import it where it fits.
    }
  }
}

/** The served heads after the first (`edgetl serve --head a.json --head b.json`). */
async function loadOtherHeads(backbone: WebBackbone): Promise<void> {
  for (const served of (state.config?.heads ?? []).slice(1)) {
    try {
      const response = await fetch(served.url);
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const head = parseWebHead(await response.text(), served.name);
      assertHeadFitsBackbone(head, backbone.info, served.name);
      state.otherHeads.push({ name: served.name, head });
    } catch (error) {
      showError(`${served.name}: ${describeError(error)}`);
    }
  }
}

// ---------------------------------------------------------------- start

async function start(): Promise<void> {
  ui.addClass.addEventListener('click', () => {
    const c = addClass(`Class ${state.classes.length + 1}`);
    c.card?.name.focus();
    c.card?.name.select();
  });
  ui.train.addEventListener('click', () => void train());
  ui.exportHead.addEventListener('click', exportHead);
  ui.importHead.addEventListener('change', () => {
    const file = ui.importHead.files?.[0];
    ui.importHead.value = '';
    if (file) void importHead(file);
  });
  ui.testFile.addEventListener('change', () => {
    const file = ui.testFile.files?.[0];
    ui.testFile.value = '';
    if (file) void showTestFile(file);
  });
  ui.cameraToggle.addEventListener('click', () => (state.stream ? stopCamera() : void startCamera()));
  for (const button of document.querySelectorAll<HTMLButtonElement>('button[data-opens]')) {
    button.addEventListener('click', () => document.getElementById(button.dataset.opens ?? '')?.click());
  }

  try {
    const response = await fetch('/api/config');
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    state.config = (await response.json()) as ServerConfig;
  } catch (error) {
    ui.modelStatus.dataset.state = 'error';
    ui.modelStatus.textContent = 'No model';
    showError(
      `Could not reach the kiosk's server (${describeError(error)}). Check that it is still running (ask whoever set up this kiosk), then reload this page.`,
    );
    return;
  }
  const config = state.config;
  state.store = await openEdgetlStore().catch(() => undefined);
  const params = new URLSearchParams(location.search);
  const ep = (params.get('ep') ?? 'auto') as WebProviderRequest;
  ui.modelStatus.textContent = `Loading ${config.backbone.id}…`;
  const t0 = performance.now();
  try {
    state.backbone = await WebBackbone.load({
      model: config.backbone.modelUrl,
      id: config.backbone.id,
      sha256: config.backbone.sha256,
      preprocess: config.backbone.preprocess,
      embeddingOutput: config.backbone.outputName,
      fixedBatch: config.backbone.fixedBatch,
      ep: ['auto', 'webgpu', 'wasm'].includes(ep) ? ep : 'auto',
      wasmPaths: config.ortUrl,
      // Photos and camera frames are decoded and resized off the page; where the browser cannot, WebBackbone says
      // why on the console and the device panel shows it.
      preprocessWorker: new URL('/preprocess-worker.js', location.href),
    });
  } catch (error) {
    ui.modelStatus.dataset.state = 'error';
    ui.modelStatus.textContent = 'Model failed to load';
    showError(
      `The model ${config.backbone.id} failed to load: ${describeError(error)}\nCheck that the kiosk's server is still running, then reload the page; if it fails again, the model file on the server may be damaged (ask whoever set up this kiosk).`,
    );
    renderDevice();
    return;
  }
  state.loadMs = performance.now() - t0;
  ui.modelStatus.dataset.state = 'ready';
  ui.modelStatus.textContent = `${config.backbone.id} on ${state.backbone.report.used === 'webgpu' ? 'WebGPU' : 'WebAssembly'}`;
  document.body.dataset.model = 'ready';
  renderDevice();
  await restore();
  updateTrainButton();
  renderPrediction(undefined);
  document.body.dataset.ready = 'true';
}

void start();
