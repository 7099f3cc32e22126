/**
 * The browser seam to onnxruntime-web: the only browser file that imports it. Picks WebGPU, then WASM, and says
 * which one ran and why anything else did not (same ProviderReport as Node).
 *
 * onnxruntime-web stays an external import: a page maps the bare name `onnxruntime-web` to the served
 * `ort.min.mjs` (an import map; `edgetl serve` does this), an app with a bundler resolves it from node_modules.
 */
import * as ort from 'onnxruntime-web';
import { EdgetlError, describeError } from '../../core/util/errors.js';
import type {
  AdapterInfo,
  BackboneSession,
  ExecutionProviderName,
  ProviderFallback,
  ProviderReport,
  SessionOutput,
} from '../../core/execution/types.js';

/** Providers a browser offers. `auto` = WebGPU on a real (hardware) adapter, else WASM. */
export type WebProviderRequest = 'auto' | 'webgpu' | 'wasm';

export interface WebSessionOptions {
  ep?: WebProviderRequest;
  /** Fail instead of falling back when the requested provider can't run. */
  strictEp?: boolean;
  /** URL prefix of onnxruntime-web's .wasm/.mjs files (default: beside the onnxruntime-web module). */
  wasmPaths?: string;
  /** WASM threads; default: all cores (capped at 4) when cross-origin isolated, else 1. */
  numThreads?: number;
  /**
   * Graph outputs that should stay on the GPU (WebGPU only) because the next step is another WebGPU session.
   * Everything else is read back to the CPU once.
   */
  keepOnGpu?: string[];
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * Whether the graph has int8 ops (QuantizeLinear, QLinear*, ...). Detected from the model bytes when omitted.
   * onnxruntime-web 1.30's WebGPU EP returns wrong results for such graphs (see QUANTIZED_WEBGPU_REASON), so they
   * run on WASM unless `allowQuantizedWebGpu` is set.
   */
  quantized?: boolean;
  allowQuantizedWebGpu?: boolean;
  /**
   * Run WASM inference in onnxruntime-web's proxy worker so the page's thread stays free (without it a run blocks the
   * page for its whole duration: no input, no painting). Default: on when the page will use WASM only, i.e. no
   * WebGPU session is attempted before the first session (the choice is global and made once per page).
   */
  proxy?: boolean;
}

/**
 * Measured here (onnxruntime-web 1.30, Chromium 156, SwiftShader adapter): MobileNetV2-int8 (QOperator) and
 * ShuffleNetV2-QDQ give embeddings with cosine 0.46-0.54 against onnxruntime's CPU result for the same input tensor,
 * while fp32 graphs match to 1.0000 and the same int8 graphs on WASM match exactly. Forcing the Q/DQ nodes onto the
 * CPU does not help, so quantized graphs stay on WASM.
 */
export const QUANTIZED_WEBGPU_REASON =
  'int8 (quantized) graph: onnxruntime-web 1.30 WebGPU gives wrong embeddings for it (cosine ~0.5 vs CPU, measured); WASM runs it exactly';

const QUANTIZED_OP_NAMES = [
  'QuantizeLinear',
  'DequantizeLinear',
  'QLinearConv',
  'QLinearMatMul',
  'QLinearAdd',
  'MatMulInteger',
  'ConvInteger',
  'DynamicQuantizeLinear',
];

/** True when the ONNX bytes mention an int8 op type (op types are plain strings in the protobuf). */
export function hasQuantizedOps(model: Uint8Array): boolean {
  const text = new TextDecoder('latin1').decode(
    model.length > 64 * 1024 * 1024 ? model.subarray(0, 64 * 1024 * 1024) : model,
  );
  return QUANTIZED_OP_NAMES.some((op) => text.includes(op));
}

/** ProviderReport plus the browser facts that decide WASM speed. */
export interface WebProviderReport extends ProviderReport {
  used: Extract<ExecutionProviderName, 'webgpu' | 'wasm'>;
  crossOriginIsolated: boolean;
  wasmThreads: number;
  /** Plain-language notes a device panel shows (e.g. why threads are off). */
  notes: string[];
  /** WASM inference runs in onnxruntime-web's proxy worker (the page's thread stays responsive). */
  proxyWorker: boolean;
}

/** A float32 result read back to the CPU. */
export interface CpuTensor {
  data: Float32Array;
  dims: number[];
}

/** Minimal WebGPU shapes we read (lib.dom has no WebGPU types yet). */
interface GpuAdapterInfoLike {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}
interface GpuAdapterLike {
  info?: GpuAdapterInfoLike;
  isFallbackAdapter?: boolean;
  requestAdapterInfo?: () => Promise<GpuAdapterInfoLike>;
}
interface GpuLike {
  requestAdapter(options?: { powerPreference?: 'low-power' | 'high-performance' }): Promise<GpuAdapterLike | null>;
}

const SOFTWARE_ADAPTER = /swiftshader|llvmpipe|lavapipe|softpipe|microsoft basic render|warp/i;

/** The WebGPU adapter this page would get, or the reason there is none. */
export async function probeWebGpu(): Promise<{ adapter?: AdapterInfo; gpuAdapter?: unknown; reason?: string }> {
  const gpu = (globalThis.navigator as (Navigator & { gpu?: GpuLike }) | undefined)?.gpu;
  if (!gpu)
    return { reason: 'this browser has no WebGPU (navigator.gpu is missing; Chrome/Edge 113+ on a secure origin)' };
  let adapter: GpuAdapterLike | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (error) {
    return { reason: `navigator.gpu.requestAdapter() failed: ${describeError(error)}` };
  }
  if (!adapter) return { reason: 'no WebGPU adapter (GPU blocklisted, disabled, or absent)' };
  let info: GpuAdapterInfoLike = adapter.info ?? {};
  if (!adapter.info && adapter.requestAdapterInfo) {
    try {
      info = await adapter.requestAdapterInfo();
    } catch {
      info = {};
    }
  }
  const text = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ');
  const software = info.isFallbackAdapter === true || adapter.isFallbackAdapter === true || SOFTWARE_ADAPTER.test(text);
  return {
    gpuAdapter: adapter,
    adapter: {
      vendor: info.vendor || undefined,
      architecture: info.architecture || undefined,
      device: info.device || undefined,
      description: info.description || undefined,
      software,
    },
  };
}

function defaultThreads(isolated: boolean): number {
  if (!isolated) return 1;
  const cores = globalThis.navigator?.hardwareConcurrency ?? 2;
  return Math.max(1, Math.min(4, cores));
}

let wasmConfigured = false;
let webgpuAdapterSet = false;

/**
 * onnxruntime-web reads its WASM flags once, when the first session initializes it: set them once, consistently,
 * and report what is really in force afterwards.
 */
function configureWasm(
  options: WebSessionOptions,
  notes: string[],
  proxyWanted: boolean,
): { threads: number; proxy: boolean } {
  const isolated = globalThis.crossOriginIsolated === true;
  const requested = options.numThreads ?? defaultThreads(isolated);
  let threads = requested;
  if (!isolated && requested > 1) {
    threads = 1;
    notes.push(
      `WASM threads need cross-origin isolation (COOP/COEP headers); running 1 thread instead of ${requested}`,
    );
  } else if (!isolated) {
    notes.push(
      'page is not cross-origin isolated (no COOP/COEP headers): WASM runs single-threaded; serve the page with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp (the kiosk server does)',
    );
  }
  if (!wasmConfigured) {
    ort.env.wasm.numThreads = threads;
    // The proxy worker needs a Worker and is meaningless inside one; onnxruntime-web cannot combine it with WebGPU.
    ort.env.wasm.proxy = proxyWanted && typeof Worker !== 'undefined' && typeof document !== 'undefined';
    if (options.wasmPaths) ort.env.wasm.wasmPaths = options.wasmPaths;
    wasmConfigured = true;
  } else {
    threads = ort.env.wasm.numThreads ?? threads;
  }
  const proxy = ort.env.wasm.proxy === true;
  if (proxy)
    notes.push('WASM inference runs in a worker (onnxruntime-web proxy): the page stays responsive while it runs');
  return { threads, proxy };
}

/** Whether WebGPU should be tried, decided before onnxruntime-web initializes (its WASM proxy worker excludes it). */
interface WebGpuDecision {
  adapter?: AdapterInfo;
  /** Why not (absent: try it). */
  reason?: string;
  probed?: Awaited<ReturnType<typeof probeWebGpu>>;
}

async function decideWebGpu(
  requested: WebSessionOptions['ep'] & {},
  bytes: string | Uint8Array,
  options: WebSessionOptions,
): Promise<WebGpuDecision> {
  if (requested !== 'webgpu' && requested !== 'auto') return {};
  const probe = await probeWebGpu();
  let reason = probe.reason;
  if (!reason && requested === 'auto' && probe.adapter?.software) {
    reason = `the WebGPU adapter is a software one (${describeAdapter(probe.adapter)}): slower than WASM; ask for ep 'webgpu' to use it anyway`;
  }
  if (
    !reason &&
    !options.allowQuantizedWebGpu &&
    (options.quantized ?? (typeof bytes !== 'string' && hasQuantizedOps(bytes)))
  ) {
    reason = QUANTIZED_WEBGPU_REASON;
  }
  return { adapter: probe.adapter, reason, probed: probe };
}

/** A WebGPU session (outputs named in keepOnGpu left on the GPU), or why it could not open. */
async function openWebGpuSession(
  bytes: string | Uint8Array,
  base: ort.InferenceSession.SessionOptions,
  options: WebSessionOptions,
): Promise<ort.InferenceSession | { reason: string }> {
  try {
    return await openSession(bytes, {
      ...base,
      executionProviders: ['webgpu'],
      ...(options.keepOnGpu?.length
        ? {
            preferredOutputLocation: Object.fromEntries(options.keepOnGpu.map((n) => [n, 'gpu-buffer' as const])),
          }
        : {}),
    });
  } catch (error) {
    return { reason: `WebGPU session failed: ${describeError(error)}` };
  }
}

/** The WASM session every request ends with; its failure names what was tried before. */
async function openWasmSession(
  model: string | ArrayBuffer | Uint8Array,
  bytes: string | Uint8Array,
  base: ort.InferenceSession.SessionOptions,
  proxy: boolean,
  fallbacks: ProviderFallback[],
): Promise<ort.InferenceSession> {
  try {
    // The proxy worker takes ownership of the bytes it is sent: give it a copy so the caller's stay usable.
    const modelForSession = proxy && typeof bytes !== 'string' ? bytes.slice() : bytes;
    return await openSession(modelForSession, { ...base, executionProviders: ['wasm'] });
  } catch (error) {
    const why = fallbacks.map((f) => `${f.provider}: ${f.reason}`).join('; ');
    throw new EdgetlError(
      'model-load',
      `the model failed to load in onnxruntime-web (wasm): ${describeError(error)}${why ? ` (after ${why})` : ''}`,
      {
        file: typeof model === 'string' ? model : undefined,
        cause: error,
      },
    );
  }
}

/** One inference session in the browser, with the report of what ran: the browser's BackboneSession. */
export class WebInferenceSession implements BackboneSession {
  private closed = false;

  private constructor(
    private readonly session: ort.InferenceSession,
    readonly provider: WebProviderReport,
  ) {}

  /** @deprecated the same report as `provider` (one name per concept); kept for the kiosk app until it moves over. */
  get report(): WebProviderReport {
    return this.provider;
  }

  /** The (first) graph input, fed by `run`. */
  get inputName(): string {
    return this.session.inputNames[0] ?? '';
  }

  /** The input's dims from the model's metadata: a number when fixed, the symbolic name when free. */
  get inputDims(): readonly (number | string)[] | undefined {
    const meta = this.session.inputMetadata?.[0];
    return meta?.isTensor && meta.shape.length > 0 ? [...meta.shape] : undefined;
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }
  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /**
   * Opens a model (URL or bytes) on WebGPU or WASM. `auto` tries WebGPU only on a hardware adapter (a software one
   * like SwiftShader is for correctness, never chosen automatically), then WASM.
   */
  static async create(
    model: string | ArrayBuffer | Uint8Array,
    options: WebSessionOptions = {},
  ): Promise<WebInferenceSession> {
    const requested = options.ep ?? 'auto';
    const notes: string[] = [];
    const fallbacks: ProviderFallback[] = [];
    const bytes = model instanceof ArrayBuffer ? new Uint8Array(model) : model;
    const base: ort.InferenceSession.SessionOptions = {
      graphOptimizationLevel: options.graphOptimizationLevel ?? 'all',
    };

    // Decide about WebGPU before onnxruntime-web initializes: the proxy worker (for WASM) excludes it.
    const { adapter, reason: webgpuReason, probed } = await decideWebGpu(requested, bytes, options);
    const tryWebGpu = (requested === 'webgpu' || requested === 'auto') && !webgpuReason;
    // Hand onnxruntime-web the adapter we probed and report, so the one that runs is the one named.
    if (tryWebGpu && probed?.gpuAdapter && !webgpuAdapterSet) {
      ort.env.webgpu.adapter = probed.gpuAdapter;
      webgpuAdapterSet = true;
    }
    const { threads: wasmThreads, proxy } = configureWasm(options, notes, options.proxy ?? !tryWebGpu);
    const isolated = globalThis.crossOriginIsolated === true;
    const report = (used: 'webgpu' | 'wasm'): WebProviderReport =>
      used === 'webgpu'
        ? { requested, used, fallbacks, adapter, crossOriginIsolated: isolated, wasmThreads, notes, proxyWorker: false }
        : {
            requested,
            used,
            fallbacks,
            adapter,
            crossOriginIsolated: isolated,
            wasmThreads,
            notes,
            intraOpThreads: wasmThreads,
            proxyWorker: proxy,
          };

    if (requested === 'webgpu' || requested === 'auto') {
      let reason = webgpuReason;
      if (!reason && proxy)
        reason =
          'this page already runs onnxruntime-web in its WASM proxy worker, which cannot host WebGPU (reload the page to use WebGPU)';
      if (!reason) {
        const opened = await openWebGpuSession(bytes, base, options);
        if (!('reason' in opened)) return new WebInferenceSession(opened, report('webgpu'));
        reason = opened.reason;
      }
      if (requested === 'webgpu' && options.strictEp) {
        throw new EdgetlError('ep-unavailable', `WebGPU was required (strictEp) but can't run: ${reason}`);
      }
      fallbacks.push({ provider: 'webgpu', reason: reason ?? 'unavailable' });
    }
    const session = await openWasmSession(model, bytes, base, proxy, fallbacks);
    return new WebInferenceSession(session, report('wasm'));
  }

  /** BackboneSession's run: one float32 input, `outputName` (default: the first output) read back. */
  async run(
    input: Float32Array,
    dims: readonly number[],
    outputName: string = this.outputNames[0] ?? '',
  ): Promise<SessionOutput> {
    const outputs = await this.runOutputs({ [this.inputName]: { data: input, dims: [...dims] } }, [outputName]);
    return outputs[outputName];
  }

  /**
   * Runs float32 inputs and reads back the named outputs (default: all). Outputs listed in `keepOnGpu` are not read
   * back: `runKeepingGpu` hands them on as ort tensors.
   */
  async runOutputs(
    inputs: Record<string, CpuTensor>,
    outputNames: readonly string[] = this.session.outputNames,
  ): Promise<Record<string, CpuTensor>> {
    if (this.closed) throw new EdgetlError('closed', 'the onnxruntime-web session is already closed');
    const results = await this.runRaw(inputs, outputNames);
    const out: Record<string, CpuTensor> = {};
    for (const name of outputNames) {
      const tensor = results[name];
      if (!tensor)
        throw new EdgetlError(
          'model-output',
          `the model has no output "${name}" (outputs: ${this.outputNames.join(', ')})`,
        );
      let data: unknown;
      if (tensor.location === 'cpu' || tensor.location === 'cpu-pinned') data = tensor.data;
      else data = await tensor.getData(true);
      if (!(data instanceof Float32Array)) {
        throw new EdgetlError('model-output', `output "${name}" is ${tensor.type}, expected float32`);
      }
      out[name] = { data, dims: [...tensor.dims] };
    }
    return out;
  }

  /** Runs and returns onnxruntime tensors as they are (GPU-resident where `keepOnGpu` asked), for a next session. */
  async runRaw(
    inputs: Record<string, CpuTensor | ort.Tensor>,
    outputNames: readonly string[] = this.session.outputNames,
  ): Promise<Record<string, ort.Tensor>> {
    const feeds: Record<string, ort.Tensor> = {};
    // The proxy worker takes ownership of input buffers: send copies so callers may reuse theirs.
    const copy = this.provider.proxyWorker;
    for (const [name, value] of Object.entries(inputs)) {
      feeds[name] =
        value instanceof ort.Tensor
          ? value
          : new ort.Tensor('float32', copy ? value.data.slice() : value.data, value.dims);
    }
    const results = await this.session.run(feeds, outputNames);
    return results as Record<string, ort.Tensor>;
  }

  /** Free the session. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.session.release();
  }
}

async function openSession(
  model: string | Uint8Array,
  options: ort.InferenceSession.SessionOptions,
): Promise<ort.InferenceSession> {
  return typeof model === 'string'
    ? ort.InferenceSession.create(model, options)
    : ort.InferenceSession.create(model, options);
}

export function describeAdapter(adapter: AdapterInfo): string {
  const parts = [adapter.vendor, adapter.architecture, adapter.device, adapter.description].filter(Boolean);
  return parts.length ? parts.join(' / ') : 'unnamed adapter';
}

/** onnxruntime-web's version, for the device panel and bench reports. */
export function onnxruntimeWebVersion(): string | undefined {
  return ort.env.versions.web;
}
