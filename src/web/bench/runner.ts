/**
 * The browser half of `edgetl serve --bench <profile>`: runs a device profile's measurements in the page with the same
 * method as the Node harness (src/bench: measureRepeated windows, the same statistics, noise and run ids) and returns
 * the run records of the edgetl-bench/1 results; the server adds host, profile and budget verdicts.
 */
import type { DeviceProfile } from '../../node/bench/profile.js';
import type {
  BackboneFacts,
  EndToEndRun,
  HeadRun,
  InferenceRun,
  PreprocessRun,
  ProviderFacts,
} from '../../node/bench/results.js';
import { measureRepeated } from '../../node/bench/measure.js';
import { median, seededNormal, seededRandom, summarize } from '../../core/bench/stats.js';
import type { ExecutionProviderName } from '../../core/execution/types.js';
import { WebInferenceSession, type WebProviderReport } from '../execution/web-session.js';
import { imageToTensor } from '../preprocess/canvas.js';
import type { PreprocessSpec } from '../../core/preprocess/spec.js';
import { tensorDims, tensorElementsPerImage } from '../../core/preprocess/tensor.js';
import {
  SessionSamples,
  inferenceImagesPerSecondFor,
  maxDuration,
  recordEndToEndFigures,
  round,
} from '../../node/bench/run-figures.js';
import { describeError } from '../../core/util/errors.js';
import { WebBackbone } from '../backbone.js';
import { trainHeadInWorker } from '../heads.js';

/** One backbone as the server prepared it (facts from the Node side, the extractor served at `modelUrl`). */
export interface BenchBackbone {
  info: BackboneFacts;
  spec: PreprocessSpec;
  modelUrl: string;
}

/** What GET /api/bench returns. */
export interface BenchPlan {
  profile: DeviceProfile;
  backbones: BenchBackbone[];
  workerUrl: string;
  wasmPaths: string;
  /** Per-run secret the page sends back in the BENCH_TOKEN_HEADER header (protocol.ts) with its results. */
  token: string;
}

/** What the page POSTs back to /api/bench-results. */
export interface BrowserBenchPayload {
  startedAt: string;
  finishedAt: string;
  complete: boolean;
  incompleteReason?: string;
  imageSource: string;
  runs: InferenceRun[];
  preprocess: PreprocessRun[];
  endToEnd: EndToEndRun[];
  heads: HeadRun[];
  warnings: string[];
  browser: { userAgent: string; hardwareConcurrency: number; crossOriginIsolated: boolean; onnxruntimeWeb?: string };
}

export interface BenchPageProgress {
  label: string;
  done?: number;
  total?: number;
}

/** Seeded N(0,1) input, as the Node harness feeds its sessions. */
function seededTensor(elements: number, seed: number): Float32Array {
  const normal = seededNormal(seed);
  const out = new Float32Array(elements);
  for (let i = 0; i < elements; i++) out[i] = normal();
  return out;
}

/** Seeded photo-like JPEGs (smooth gradients plus noise, so the codec and the resampler do real work). */
async function syntheticJpegs(count: number, width: number, height: number, seed: number): Promise<Blob[]> {
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext('2d');
  if (!context) throw new Error('no 2D canvas for synthetic images');
  const blobs: Blob[] = [];
  for (let n = 0; n < count; n++) {
    const random = seededRandom(seed * 1000 + n);
    const image = context.createImageData(width, height);
    const [r0, g0, b0] = [random() * 255, random() * 255, random() * 255];
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const o = (y * width + x) * 4;
        const noise = (random() - 0.5) * 40;
        image.data[o] = r0 * (x / width) + noise;
        image.data[o + 1] = g0 * (y / height) + noise;
        image.data[o + 2] = b0 * (1 - x / width) + noise;
        image.data[o + 3] = 255;
      }
    }
    context.putImageData(image, 0, 0);
    blobs.push(await canvas.convertToBlob({ type: 'image/jpeg', quality: 0.9 }));
  }
  return blobs;
}

function providerFacts(report: WebProviderReport, profile: DeviceProfile): ProviderFacts {
  const software =
    report.adapter?.software === true || (report.used === 'webgpu' && profile.execution.webgpuSoftwareAdapter === true);
  const facts: ProviderFacts = {
    requested: report.requested,
    used: report.used,
    fallbacks: report.fallbacks,
    software,
    intraOpThreads: report.wasmThreads,
  };
  if (report.adapter) facts.adapter = report.adapter;
  if (profile.execution.graphOptimizationLevel) facts.graphOptimizationLevel = profile.execution.graphOptimizationLevel;
  const notes = [...report.notes, `browser: ${navigator.userAgent}`];
  facts.notes = notes;
  return facts;
}

function webProvider(provider: ExecutionProviderName): 'webgpu' | 'wasm' | undefined {
  return provider === 'webgpu' || provider === 'wasm' ? provider : undefined;
}

async function fetchBytes(url: string): Promise<Uint8Array> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

/** What every step of a browser bench run shares: the plan, the page's images, the record being filled. */
interface BenchRunContext {
  plan: BenchPlan;
  profile: DeviceProfile;
  payload: BrowserBenchPayload;
  images: Blob[];
  sessionOptions: BenchSessionOptions;
  seed: number;
  /** A performance profile: runs off a software adapter may claim their figures. */
  speedProfile: boolean;
  onProgress: (p: BenchPageProgress) => void;
}

/** Session options of every bench session; `ep` is added per run. */
interface BenchSessionOptions {
  numThreads: number | undefined;
  graphOptimizationLevel: DeviceProfile['execution']['graphOptimizationLevel'];
  wasmPaths: string;
  strictEp: boolean;
  proxy: boolean;
}

/** One backbone's model bytes and fixed batch (if the graph has one), fetched once for all its runs. */
interface LoadedBackbone {
  backbone: BenchBackbone;
  bytes: Uint8Array;
  fixed: number | undefined;
}

function emptyPayload(startedAt: string): BrowserBenchPayload {
  return {
    startedAt,
    finishedAt: startedAt,
    complete: false,
    imageSource: '',
    runs: [],
    preprocess: [],
    endToEnd: [],
    heads: [],
    warnings: [
      'browser runs report no memory figures: a page cannot read its resident set size',
      "WASM inference timed on the page's thread (no proxy worker), as onnxruntime runs it",
    ],
    browser: {
      userAgent: navigator.userAgent,
      hardwareConcurrency: navigator.hardwareConcurrency,
      crossOriginIsolated: globalThis.crossOriginIsolated === true,
    },
  };
}

/** The page cannot read an image folder: the profile's synthetic images (or the default set), made here. */
async function benchImages(
  profile: DeviceProfile,
  seed: number,
  payload: BrowserBenchPayload,
  onProgress: (p: BenchPageProgress) => void,
): Promise<Blob[]> {
  const synthetic = { count: 16, width: 640, height: 480, ...profile.images.synthetic };
  const imageSeed = profile.images.synthetic?.seed ?? seed;
  if (!profile.images.synthetic)
    payload.warnings.push('the profile names an image folder, which a page cannot read: synthetic images were used');
  payload.imageSource = `synthetic: ${synthetic.count} seeded ${synthetic.width}x${synthetic.height} JPEGs encoded in the page (seed ${imageSeed})`;
  onProgress({ label: 'making synthetic images' });
  return syntheticJpegs(synthetic.count, synthetic.width, synthetic.height, imageSeed);
}

/** Inference alone on seeded tensors, for one provider and batch: `m.sessions` fresh sessions, each timed. */
async function benchInferenceRun(
  context: BenchRunContext,
  loaded: LoadedBackbone,
  provider: ExecutionProviderName,
  batch: number,
): Promise<void> {
  const { profile, payload, seed, onProgress } = context;
  const { backbone, bytes, fixed } = loaded;
  const m = profile.measurement;
  const id = `${backbone.info.id}/${provider}/b${batch}`;
  const run: InferenceRun = {
    id,
    backbone: backbone.info,
    providerRequested: provider,
    batch,
    status: 'failed',
    speedClaim: false,
  };
  payload.runs.push(run);
  const ep = webProvider(provider);
  if (!ep) {
    run.status = 'unavailable';
    run.reason = `${provider} is not a browser provider (webgpu, wasm)`;
    return;
  }
  if (fixed !== undefined && batch !== fixed) {
    run.status = 'skipped';
    run.reason = `the graph's batch is fixed at ${fixed}`;
    return;
  }
  onProgress({ label: `inference ${id}` });
  const input = seededTensor(tensorElementsPerImage(backbone.spec) * batch, seed + batch);
  const dims = tensorDims(backbone.spec, batch);
  const sessions = Math.max(1, m.sessions ?? 2);
  const timed = new SessionSamples(profile, sessions);
  try {
    for (let s = 0; s < sessions; s++) {
      const t0 = performance.now();
      let session: WebInferenceSession;
      try {
        session = await WebInferenceSession.create(bytes, { ...context.sessionOptions, ep });
      } catch (error) {
        if (s > 0) throw error;
        run.status = 'unavailable';
        run.reason = `${provider} cannot run here: ${describeError(error)}`;
        break;
      }
      if (s === 0) {
        run.sessionCreateMs = round(performance.now() - t0, 3);
        run.provider = providerFacts(session.provider, profile);
        run.speedClaim = context.speedProfile && !run.provider.software;
      }
      const feeds = { [session.inputNames[0]]: { data: input, dims } };
      // The feature extractor's single output (the source model's output names do not apply to it).
      const output = [session.outputNames.includes('embedding') ? 'embedding' : session.outputNames[0]];
      const before = timed.samplesMs.length;
      const measurement = await measureRepeated(() => session.runOutputs(feeds, output), {
        ...timed.window(),
        onProgress: (done) => onProgress({ label: `inference ${id}`, done: before + done, total: m.minRuns }),
      });
      timed.add(run, measurement, s);
      await session.close();
      if (measurement.status !== 'ok') break;
    }
    timed.finish(run, batch, backbone.info.macsPerImage);
  } catch (error) {
    run.status = 'failed';
    run.reason = describeError(error);
  }
}

/** Preprocessing alone: canvas decode + resample + normalize, one image at a time (the page has one thread). */
async function benchPreprocess(context: BenchRunContext, backbone: BenchBackbone): Promise<PreprocessRun> {
  const { profile, payload, images, onProgress } = context;
  const m = profile.measurement;
  onProgress({ label: `preprocess ${backbone.info.id}` });
  const count = Math.min(m.preprocessImages ?? images.length, images.length);
  const pre: PreprocessRun = {
    backbone: backbone.info.id,
    spec: JSON.stringify(backbone.spec),
    images: count,
    source: payload.imageSource,
    status: 'failed',
  };
  payload.preprocess.push(pre);
  try {
    const buffer = new Float32Array(tensorElementsPerImage(backbone.spec));
    await imageToTensor(images[0], backbone.spec, { out: buffer });
    const samples: number[] = [];
    const start = performance.now();
    for (let i = 0; samples.length < count || performance.now() - start < (m.preprocessMinDurationMs ?? 2000); i++) {
      const t0 = performance.now();
      await imageToTensor(images[i % count], backbone.spec, { out: buffer });
      samples.push(performance.now() - t0);
      if (performance.now() - start > maxDuration(profile)) break;
    }
    pre.msPerImage = summarize(samples);
    pre.imagesPerSecond = round(samples.length / ((performance.now() - start) / 1000), 3);
    pre.concurrency = 1;
    pre.status = 'ok';
  } catch (error) {
    pre.reason = describeError(error);
  }
  return pre;
}

/** End to end for one provider and batch: image blobs to embeddings through WebBackbone, timed per pass. */
async function benchEndToEndRun(
  context: BenchRunContext,
  loaded: LoadedBackbone,
  pre: PreprocessRun,
  provider: ExecutionProviderName,
  batch: number,
  endToEnd: NonNullable<DeviceProfile['endToEnd']>,
): Promise<void> {
  const { payload, images, onProgress } = context;
  const { backbone, bytes, fixed } = loaded;
  const id = `${backbone.info.id}/${provider}/b${batch}`;
  const run: EndToEndRun = {
    id,
    backbone: backbone.info.id,
    provider,
    batch,
    status: 'failed',
    speedClaim: false,
  };
  payload.endToEnd.push(run);
  const ep = webProvider(provider);
  if (!ep || (fixed !== undefined && batch !== fixed)) {
    run.status = 'skipped';
    run.reason = ep ? `the graph's batch is fixed at ${fixed}` : `${provider} is not a browser provider`;
    return;
  }
  onProgress({ label: `end-to-end ${id}` });
  let web: WebBackbone | undefined;
  try {
    try {
      web = await WebBackbone.load({
        ...context.sessionOptions,
        ep,
        model: bytes,
        id: backbone.info.id,
        sha256: backbone.info.sha256,
        preprocess: backbone.spec,
        embeddingOutput: 'embedding',
        fixedBatch: fixed,
        batchSize: batch,
      });
    } catch (error) {
      run.status = 'unavailable';
      run.reason = `${provider} cannot run here: ${describeError(error)}`;
      return;
    }
    run.speedClaim = context.speedProfile && web.provider.adapter?.software !== true;
    const total = endToEnd.images ?? 64;
    const list = Array.from({ length: total }, (_, i) => images[i % images.length]);
    await web.embedMany(list.slice(0, Math.max(batch, 2)));
    const passSeconds: number[] = [];
    for (let r = 0; r < (endToEnd.repeats ?? 3); r++) {
      const t0 = performance.now();
      await web.embedMany(list);
      passSeconds.push(round((performance.now() - t0) / 1000, 4));
    }
    recordEndToEndFigures(run, {
      images: total,
      passSeconds,
      preprocessImagesPerSecond: pre.imagesPerSecond,
      inferenceImagesPerSecond: inferenceImagesPerSecondFor(payload.runs, backbone.info.id, provider, batch),
    });
    run.status = 'ok';
  } catch (error) {
    run.status = 'failed';
    run.reason = describeError(error);
  } finally {
    await web?.close();
  }
}

/** Every measurement of one backbone: inference per provider and batch, preprocessing, then end to end. */
async function benchBackbone(context: BenchRunContext, backbone: BenchBackbone): Promise<void> {
  const { profile } = context;
  const loaded: LoadedBackbone = {
    backbone,
    bytes: await fetchBytes(backbone.modelUrl),
    fixed: typeof backbone.info.batch === 'number' ? backbone.info.batch : undefined,
  };
  for (const provider of profile.execution.providers) {
    for (const batch of profile.batchSizes) await benchInferenceRun(context, loaded, provider, batch);
  }
  const pre = await benchPreprocess(context, backbone);
  const endToEnd = profile.endToEnd;
  if (!endToEnd?.enabled) return;
  for (const provider of profile.execution.providers) {
    for (const batch of endToEnd.batchSizes ?? [profile.batchSizes[0]])
      await benchEndToEndRun(context, loaded, pre, provider, batch, endToEnd);
  }
}

type HeadsProfile = NonNullable<DeviceProfile['heads']>;

/** Seeded clustered embeddings: one Gaussian centre per class, 1.5 noise, classes in turn. */
function syntheticHeadData(heads: HeadsProfile): { embeddings: Float32Array; targets: Int32Array; labels: string[] } {
  const normal = seededNormal(heads.seed ?? 7);
  const centres = Array.from({ length: heads.classes }, () => Float32Array.from({ length: heads.dim }, () => normal()));
  const embeddings = new Float32Array(heads.samples * heads.dim);
  const targets = new Int32Array(heads.samples);
  for (let i = 0; i < heads.samples; i++) {
    const c = i % heads.classes;
    targets[i] = c;
    for (let d = 0; d < heads.dim; d++) embeddings[i * heads.dim + d] = centres[c][d] + 1.5 * normal();
  }
  const labels = Array.from({ length: heads.classes }, (_, c) => `class-${c}`);
  return { embeddings, targets, labels };
}

/** One head type: trained in a Web Worker (as the kiosk does) `repeats` times, then accuracy and predict latency. */
async function benchHeadRun(
  context: BenchRunContext,
  heads: HeadsProfile,
  data: ReturnType<typeof syntheticHeadData>,
  type: HeadsProfile['types'][number],
): Promise<void> {
  const { embeddings, targets, labels } = data;
  const run: HeadRun = { type, samples: heads.samples, dim: heads.dim, classes: heads.classes, status: 'failed' };
  context.payload.heads.push(run);
  context.onProgress({ label: `head ${type}` });
  try {
    const trainSeconds: number[] = [];
    let head: Awaited<ReturnType<typeof trainHeadInWorker>> | undefined;
    for (let r = 0; r < (heads.repeats ?? 1); r++) {
      const t0 = performance.now();
      head = await trainHeadInWorker(
        {
          embeddings,
          dim: heads.dim,
          labels,
          targets,
          headType: type,
          seed: heads.seed ?? 7,
          backbone: { id: 'synthetic', sha256: '0'.repeat(64), embeddingDim: heads.dim, preprocess: null },
        },
        { workerUrl: context.plan.workerUrl },
      );
      trainSeconds.push(round((performance.now() - t0) / 1000, 4));
    }
    if (!head) throw new Error('no training repeat ran');
    let correct = 0;
    for (let i = 0; i < heads.samples; i++)
      if (head.head.predict(embeddings.subarray(i * heads.dim, (i + 1) * heads.dim)).index === targets[i]) correct++;
    const predictions = heads.predictions ?? 1000;
    const samples: number[] = [];
    for (let i = 0; i < predictions; i++) {
      const row = embeddings.subarray((i % heads.samples) * heads.dim, ((i % heads.samples) + 1) * heads.dim);
      const t0 = performance.now();
      head.head.predict(row);
      samples.push(performance.now() - t0);
    }
    run.trainSeconds = trainSeconds;
    run.trainSecondsMedian = median(trainSeconds);
    run.trainAccuracy = round(correct / heads.samples, 4);
    run.predictMsPerEmbedding = summarize(samples);
    run.status = 'ok';
  } catch (error) {
    run.reason = describeError(error);
  }
}

export async function runBrowserBench(
  plan: BenchPlan,
  onProgress: (p: BenchPageProgress) => void = () => undefined,
): Promise<BrowserBenchPayload> {
  const { profile } = plan;
  const payload = emptyPayload(new Date().toISOString());
  const seed = profile.measurement.seed ?? 42;
  const images = await benchImages(profile, seed, payload, onProgress);
  // No proxy worker: inference is timed as onnxruntime runs it, as in Node (the kiosk page uses the proxy so its
  // thread stays free; that adds a message round trip and an input copy per run).
  const sessionOptions: BenchSessionOptions = {
    numThreads: profile.execution.intraOpThreads,
    graphOptimizationLevel: profile.execution.graphOptimizationLevel,
    wasmPaths: plan.wasmPaths,
    strictEp: true,
    proxy: false,
  };
  const context: BenchRunContext = {
    plan,
    profile,
    payload,
    images,
    sessionOptions,
    seed,
    speedProfile: profile.purpose === 'performance',
    onProgress,
  };
  for (const backbone of plan.backbones) await benchBackbone(context, backbone);
  const heads = profile.heads;
  if (heads) {
    const data = syntheticHeadData(heads);
    for (const type of heads.types) await benchHeadRun(context, heads, data, type);
  }
  payload.complete = true;
  payload.finishedAt = new Date().toISOString();
  return payload;
}
