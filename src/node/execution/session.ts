/**
 * The Node seam to onnxruntime-node: the only module (with dense-math-ort.ts) that imports it.
 *
 * createSession picks a provider (providers.ts), opens the session, falls back with a recorded reason when a
 * provider fails to start (or throws, with strictEp), and reports what actually ran.
 */
import ort from 'onnxruntime-node';
import type { InferenceSession } from 'onnxruntime-node';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { EdgetlError, describeError } from '../../core/util/errors.js';
import { gatherHostFacts, planProviders, type HostFacts, type WebGpuAssessment } from './providers.js';
import type {
  AdapterInfo,
  BackboneSession,
  ExecutionOptions,
  ExecutionProviderName,
  NodePlacement,
  ProviderFallback,
  ProviderReport,
  SessionOutput,
} from '../../core/execution/types.js';

export type { BackboneSession, SessionOutput } from '../../core/execution/types.js';

export interface CreateSessionOptions extends ExecutionOptions {
  /** Facts about the machine to decide from instead of looking (tests, or a caller that already gathered them). */
  hostFacts?: HostFacts;
}

/**
 * onnxruntime keeps one WebGPU device per process, created by the first WebGPU session. Remember what it was so a
 * later `auto` never lands on a software adapter opened earlier by an explicit `ep: 'webgpu'`.
 */
let webgpuDevice: { adapter?: AdapterInfo; software: boolean } | undefined;

function checkThreads(value: number | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < 0 || value > 1024) {
    throw new EdgetlError(
      'bad-input',
      `${name} must be a whole number from 0 (onnxruntime's default) to 1024, got ${value}`,
    );
  }
  return value;
}

/** Session options for one provider: the single place that maps ExecutionOptions to onnxruntime's. */
export function sessionOptionsFor(
  provider: ExecutionProviderName,
  options: ExecutionOptions,
): InferenceSession.SessionOptions {
  const intra = checkThreads(options.intraOpThreads, 'intraOpThreads');
  const inter = checkThreads(options.interOpThreads, 'interOpThreads');
  const level = options.graphOptimizationLevel ?? 'all';
  if (!['disabled', 'basic', 'extended', 'all'].includes(level)) {
    throw new EdgetlError(
      'bad-input',
      `graphOptimizationLevel must be disabled, basic, extended or all, got '${String(level)}'`,
    );
  }
  let executionProvider: InferenceSession.ExecutionProviderConfig;
  if (provider === 'cuda') {
    const deviceId = options.cudaDeviceId ?? 0;
    if (!Number.isInteger(deviceId) || deviceId < 0) {
      throw new EdgetlError('bad-input', `cudaDeviceId must be a whole number >= 0, got ${deviceId}`);
    }
    // onnxruntime-node 1.30 reads `deviceId` for CUDA (CreateCUDAProviderOptions + device_id); nothing else.
    executionProvider = { name: 'cuda', deviceId };
  } else if (provider === 'webgpu') {
    executionProvider = { name: 'webgpu' };
  } else if (provider === 'cpu') {
    executionProvider = { name: 'cpu' };
  } else {
    throw new EdgetlError('bad-input', `provider '${provider}' does not exist in onnxruntime-node`);
  }
  return {
    executionProviders: [executionProvider],
    graphOptimizationLevel: level,
    ...(intra !== undefined ? { intraOpNumThreads: intra } : {}),
    ...(inter !== undefined ? { interOpNumThreads: inter } : {}),
    // Inter-op threads only run independent branches in parallel mode; asking for more than one means that.
    ...(inter !== undefined && inter > 1 ? { executionMode: 'parallel' as const } : {}),
    logSeverityLevel: options.logSeverityLevel ?? 3,
    // Config keys of onnxruntime_session_options_config_keys.h; the binding joins nested names with '.'.
    extra: {
      session: {
        intra_op: { allow_spinning: options.allowSpinning ? '1' : '0' },
        inter_op: { allow_spinning: options.allowSpinning ? '1' : '0' },
      },
    },
  };
}

/** onnxruntime's messages carry source paths and repeated prefixes; keep the part a person reads. */
function condense(message: string): string {
  const text = message.replace(/\s+/g, ' ').trim();
  const failed = /Failed to get a WebGPU adapter: (.*)$/.exec(text);
  if (failed) return `no WebGPU adapter (${failed[1]})`;
  return text.replace(/\/onnxruntime_src\/\S+ /g, '').slice(0, 400);
}

function failureHint(provider: ExecutionProviderName, message: string): string {
  if (provider === 'cuda') {
    if (/libcudart|libcublas|libcudnn|cudnn|CUDA driver|cuda.*\.so|Failed to load shared library/i.test(message)) {
      return ': the CUDA provider needs the CUDA and cuDNN libraries it was built for where the dynamic loader finds them; `edgetl setup cuda --check` names each one missing and the command that installs it';
    }
    if (/no CUDA-capable device|CUDA failure 100/i.test(message))
      return ': no CUDA-capable GPU is visible to this process';
  }
  if (provider === 'webgpu' && /no WebGPU adapter/i.test(message)) {
    return (
      ': Dawn found no Vulkan device it supports (lavapipe, for one, lacks features it needs); for a correctness-only ' +
      'run without a GPU, SwiftShader works: VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json (Debian package chromium)'
    );
  }
  return '';
}

function modelName(model: string | Uint8Array): string {
  return typeof model === 'string' ? model : `model buffer (${model.byteLength} bytes)`;
}

/**
 * Point the Vulkan loader at the hardware drivers only, so Dawn can't choose a software adapter. Done only when the
 * user hasn't set the driver list and before onnxruntime has created its WebGPU device.
 */
function restrictToHardwareDrivers(assessment: WebGpuAssessment, facts: HostFacts, notes: string[]): void {
  if (webgpuDevice || facts.vulkan.overriddenBy || assessment.hardwareManifests.length === 0) return;
  process.env.VK_ICD_FILENAMES = assessment.hardwareManifests.join(':');
  notes.push(`WebGPU limited to hardware Vulkan drivers (VK_ICD_FILENAMES=${process.env.VK_ICD_FILENAMES})`);
}

class NodeBackboneSession implements BackboneSession {
  readonly inputName: string;
  readonly outputNames: readonly string[];
  readonly inputDims: readonly (number | string)[] | undefined;
  private closed = false;

  constructor(
    private readonly session: InferenceSession,
    readonly provider: ProviderReport,
    private readonly where: string,
  ) {
    this.inputName = session.inputNames[0];
    this.outputNames = [...session.outputNames];
    const meta = session.inputMetadata[0];
    this.inputDims = meta?.isTensor && meta.shape.length > 0 ? [...meta.shape] : undefined;
  }

  async run(input: Float32Array, dims: readonly number[], outputName?: string): Promise<SessionOutput> {
    if (this.closed) throw new EdgetlError('closed', `${this.where}: session already closed`);
    const name = outputName ?? this.outputNames[0];
    if (!this.outputNames.includes(name)) {
      throw new EdgetlError(
        'bad-input',
        `${this.where}: no output '${name}' (outputs: ${this.outputNames.join(', ')})`,
      );
    }
    const expected = dims.reduce((a, b) => a * b, 1);
    if (expected !== input.length) {
      throw new EdgetlError(
        'bad-input',
        `${this.where}: input has ${input.length} values but dims [${dims.join(', ')}] need ${expected}`,
      );
    }
    const feeds = { [this.inputName]: new ort.Tensor('float32', input, [...dims]) };
    let results: InferenceSession.ReturnType;
    try {
      results = await this.session.run(feeds, [name]);
    } catch (error) {
      throw new EdgetlError(
        'inference-failed',
        `${this.where}: inference failed on ${this.provider.used}: ${condense(describeError(error))}`,
        {
          cause: error,
        },
      );
    }
    const tensor = results[name];
    const data = tensor.data;
    let floats: Float32Array;
    if (data instanceof Float32Array) floats = data;
    else if (ArrayBuffer.isView(data) && !(data instanceof BigInt64Array) && !(data instanceof BigUint64Array)) {
      floats = Float32Array.from(data as ArrayLike<number>);
    } else {
      throw new EdgetlError('bad-model', `${this.where}: output '${name}' is ${tensor.type}, not a numeric tensor`);
    }
    return { data: floats, dims: [...tensor.dims] };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.session.release();
  }
}

/**
 * The providers `auto` (or the request) will try, in order. A process that already opened WebGPU on a software
 * adapter keeps that one device, so `auto` does not try WebGPU again.
 */
function providerCandidates(
  requested: CreateSessionOptions['ep'] & {},
  plan: ReturnType<typeof planProviders>,
  fallbacks: ProviderFallback[],
): ExecutionProviderName[] {
  let candidates = plan.candidates;
  if (requested === 'auto' && webgpuDevice?.software && candidates.includes('webgpu')) {
    candidates = candidates.filter((c) => c !== 'webgpu');
    fallbacks.push({
      provider: 'webgpu',
      reason:
        'this process already opened WebGPU on a software adapter (onnxruntime keeps one WebGPU device per process)',
    });
  }
  return candidates;
}

/**
 * A session on `provider`, or the reason it would not start (to try the next one). CPU failing means onnxruntime
 * cannot load the model at all; a strict request fails rather than falls back.
 */
async function openOn(
  model: string | Uint8Array,
  provider: ExecutionProviderName,
  options: CreateSessionOptions,
  where: string,
  requested: CreateSessionOptions['ep'] & {},
  strict: boolean,
): Promise<InferenceSession | { reason: string }> {
  const sessionOptions = sessionOptionsFor(provider, options);
  try {
    return typeof model === 'string'
      ? await ort.InferenceSession.create(model, sessionOptions)
      : await ort.InferenceSession.create(model, sessionOptions);
  } catch (error) {
    const message = condense(describeError(error));
    if (provider === 'cpu') {
      throw new EdgetlError('bad-model', `${where}: onnxruntime could not load the model: ${message}`, {
        file: typeof model === 'string' ? model : undefined,
        cause: error,
      });
    }
    const reason = `${provider} session failed to start: ${message}${failureHint(provider, message)}`;
    const requestedThis = requested === provider || (requested === 'auto' && strict);
    if (strict && requestedThis) {
      throw new EdgetlError('ep-unavailable', `\`ep: '${requested}'\` can't run here (\`strictEp\`): ${reason}`, {
        cause: error,
      });
    }
    return { reason };
  }
}

/**
 * Which nodes run where on a GPU provider, from a probe session's log. With `auto`, a session that leaves most of
 * the work on the CPU is not worth it: `rejected` says why.
 */
async function placementOn(
  model: string | Uint8Array,
  provider: ExecutionProviderName,
  options: CreateSessionOptions,
  requested: CreateSessionOptions['ep'] & {},
): Promise<{ placement?: NodePlacement[]; notes: string[]; rejected?: string }> {
  if (options.checkPlacement === false)
    return { notes: [`onnxruntime runs any node ${provider} has no kernel for on the CPU (placement not checked)`] };
  const probe = await probeSession(model, provider, options).catch((error: unknown) => ({
    created: false,
    error: describeError(error),
    placement: [],
  }));
  if (probe.placement.length === 0)
    return {
      notes: [
        `could not check which nodes run on ${provider}: ${probe.error ?? "onnxruntime's log showed no placement"}`,
      ],
    };
  const described = describePlacement(provider, probe.placement);
  // auto is there to pick what is fastest: a GPU session that leaves most of the work on the CPU only adds
  // transfers (e.g. the int8 MobileNetV2 on WebGPU: 68 of 70 nodes on the CPU).
  if (requested === 'auto' && mostlyOnCpu(probe.placement))
    return { notes: [], rejected: `${described}, so it would be no faster than cpu` };
  return { placement: probe.placement, notes: [described] };
}

/**
 * Open `model` (a path or the bytes of an ONNX file) on the provider `options.ep` asks for (default `auto`).
 * Throws EdgetlError: 'ep-unavailable' (strictEp and the provider can't run), 'bad-model' (onnxruntime can't load
 * the model even on CPU), 'bad-input' (bad options).
 */
export async function createSession(
  model: string | Uint8Array,
  options: CreateSessionOptions = {},
): Promise<BackboneSession> {
  const requested = options.ep ?? 'auto';
  const strict = options.strictEp ?? false;
  // Validate options up front so a typo isn't reported as a provider failure.
  sessionOptionsFor('cpu', options);
  const gathered = options.hostFacts ?? gatherHostFacts();
  const facts: HostFacts = {
    ...gathered,
    supportedBackends: gathered.supportedBackends ?? ort.listSupportedBackends(),
  };
  const plan = planProviders(requested, facts, strict);
  const fallbacks: ProviderFallback[] = [...plan.skipped];
  const notes: string[] = [];
  const where = modelName(model);

  for (const provider of providerCandidates(requested, plan, fallbacks)) {
    let adapter: AdapterInfo | undefined;
    if (provider === 'webgpu') {
      restrictToHardwareDrivers(plan.webgpu, facts, notes);
      adapter = webgpuDevice?.adapter ?? plan.webgpu.adapter;
    }
    const session = await openOn(model, provider, options, where, requested, strict);
    if ('reason' in session) {
      fallbacks.push({ provider, reason: session.reason });
      continue;
    }
    const found: string[] = [];
    if (provider === 'webgpu') {
      webgpuDevice ??= { adapter, software: adapter?.software ?? false };
      if (adapter?.software) {
        found.push(
          `WebGPU is running on a software adapter (${adapter.device ?? adapter.description ?? 'CPU emulation'}): results are correct but it is far slower than \`ep: 'cpu'\``,
        );
      }
    }
    let placement: NodePlacement[] | undefined;
    if (provider !== 'cpu') {
      const checked = await placementOn(model, provider, options, requested);
      if (checked.rejected) {
        await session.release();
        fallbacks.push({ provider, reason: checked.rejected });
        continue;
      }
      placement = checked.placement;
      found.push(...checked.notes);
    }
    notes.push(...found);
    const report: ProviderReport = {
      requested,
      used: provider,
      fallbacks,
      ...(adapter ? { adapter } : {}),
      ...(options.intraOpThreads !== undefined ? { intraOpThreads: options.intraOpThreads } : {}),
      ...(options.interOpThreads !== undefined ? { interOpThreads: options.interOpThreads } : {}),
      notes,
      ...(placement ? { placement } : {}),
    };
    return new NodeBackboneSession(session, report, typeof model === 'string' ? basename(model) : where);
  }
  // planProviders always ends with 'cpu', and a CPU failure throws above.
  throw new EdgetlError('internal', `${where}: no execution provider could be tried`);
}

/** More than half of the nodes, or of the heavy ones (convolutions, matrix products), left on the CPU. */
export function mostlyOnCpu(placement: readonly NodePlacement[]): boolean {
  const heavy = (ops: Record<string, number>) =>
    Object.entries(ops).reduce((n, [op, count]) => n + (/Conv|MatMul|Gemm/.test(op) ? count : 0), 0);
  const total = placement.reduce((n, p) => n + p.nodes, 0);
  const cpu = placement.filter((p) => p.provider === 'cpu');
  const onCpu = cpu.reduce((n, p) => n + p.nodes, 0);
  const heavyTotal = placement.reduce((n, p) => n + heavy(p.ops), 0);
  const heavyOnCpu = cpu.reduce((n, p) => n + heavy(p.ops), 0);
  return onCpu * 2 > total || heavyOnCpu * 2 > heavyTotal;
}

/** "68 of 73 nodes run on the CPU, not webgpu (QLinearConv x52, ...)", or "all 35 nodes run on webgpu". */
export function describePlacement(provider: string, placement: readonly NodePlacement[]): string {
  const total = placement.reduce((n, p) => n + p.nodes, 0);
  const cpu = placement.filter((p) => p.provider === 'cpu');
  const onCpu = cpu.reduce((n, p) => n + p.nodes, 0);
  if (onCpu === 0) return `all ${total} nodes run on ${provider}`;
  const ops = Object.entries(
    cpu
      .flatMap((p) => Object.entries(p.ops))
      .reduce<Record<string, number>>((acc, [op, n]) => {
        acc[op] = (acc[op] ?? 0) + n;
        return acc;
      }, {}),
  )
    .sort((a, b) => b[1] - a[1])
    .map(([op, n]) => `${op} x${n}`)
    .join(', ');
  return `${onCpu} of ${total} nodes run on the CPU, not ${provider}: onnxruntime's ${provider} provider has no kernel for them${ops ? ` (${ops})` : ''}`;
}

/** What onnxruntime did with a session, read from its own verbose log. */
export interface SessionProbe {
  created: boolean;
  error?: string;
  /** Nodes per provider after partitioning (Memcpy nodes onnxruntime inserts are left out), op type counts. */
  placement: { provider: string; nodes: number; ops: Record<string, number> }[];
  /** Thread pool sizes onnxruntime logged (0 = its default). */
  intraOpThreads?: number;
  interOpThreads?: number;
  graphOptimizationLevel?: number;
  /** Whether the intra-op pool's idle threads spin (session.intra_op.allow_spinning in the logged config). */
  allowSpinning?: boolean;
  /** onnxruntime's own error lines (condensed) when the session didn't open: they name the library that failed to load. */
  logErrors?: string[];
}

const PROBE_SCRIPT = `
const [ortPath, modelPath, optionsJson] = process.argv.slice(1);
const ort = require(ortPath);
ort.InferenceSession.create(modelPath, JSON.parse(optionsJson))
  .then((s) => s.release())
  .then(() => { process.stdout.write('EDGETL_PROBE_OK'); })
  .catch((e) => { process.stdout.write('EDGETL_PROBE_ERROR ' + e.message); process.exitCode = 0; });
`;

/** onnxruntime's provider class names to ours: WebGpu -> webgpu, CPU -> cpu, CUDA -> cuda. */
function providerName(raw: string): string {
  return raw.toLowerCase();
}

export function parseSessionLog(log: string): Omit<SessionProbe, 'created' | 'error'> {
  const placement: SessionProbe['placement'] = [];
  let current: SessionProbe['placement'][number] | undefined;
  for (const line of log.split('\n')) {
    const all = /All nodes placed on \[(\w+?)(?:ExecutionProvider)?\]\. Number of nodes: (\d+)/.exec(line);
    if (all) {
      placement.push({ provider: providerName(all[1]), nodes: Number(all[2]), ops: {} });
      current = undefined;
      continue;
    }
    const header = /Node\(s\) placed on \[(\w+?)(?:ExecutionProvider)?\]\. Number of nodes: (\d+)/.exec(line);
    if (header) {
      current = { provider: providerName(header[1]), nodes: 0, ops: {} };
      placement.push(current);
      continue;
    }
    const node = /VerifyEachNodeIsAssignedToAnEp\]\s{2,}(\w+) \(/.exec(line);
    if (node && current) {
      if (node[1] === 'MemcpyFromHost' || node[1] === 'MemcpyToHost') continue;
      current.nodes += 1;
      current.ops[node[1]] = (current.ops[node[1]] ?? 0) + 1;
    } else if (!/VerifyEachNodeIsAssignedToAnEp/.test(line)) {
      current = undefined;
    }
  }
  const intra = /intra_op_param:OrtThreadPoolParams \{ thread_pool_size: (\d+)/.exec(log);
  const inter = /inter_op_param:OrtThreadPoolParams \{ thread_pool_size: (\d+)/.exec(log);
  const level = /graph_optimization_level:(\d+)/.exec(log);
  const spinning = /session\.intra_op\.allow_spinning: (\d)/.exec(log);
  return {
    placement,
    ...(intra ? { intraOpThreads: Number(intra[1]) } : {}),
    ...(inter ? { interOpThreads: Number(inter[1]) } : {}),
    ...(level ? { graphOptimizationLevel: Number(level[1]) } : {}),
    ...(spinning ? { allowSpinning: spinning[1] === '1' } : {}),
  };
}

/**
 * Open `model` on one provider in a child process with onnxruntime's verbose log, and report where its nodes went
 * and which thread pools it set up. onnxruntime logs natively to stderr, out of this process' reach, hence the child.
 * Costs one extra session creation: a diagnostic, not something to run per image.
 */
export async function probeSession(
  model: string | Uint8Array,
  provider: ExecutionProviderName,
  options: ExecutionOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): Promise<SessionProbe> {
  const sessionOptions = { ...sessionOptionsFor(provider, options), logSeverityLevel: 0 as const };
  const ortPath = createRequire(import.meta.url).resolve('onnxruntime-node');
  // The log goes to a file, not a pipe: Node makes its stdio pipes non-blocking, and onnxruntime's native writes to
  // a full pipe then fail with EAGAIN and are silently lost (seen on a busy machine: the placement lines vanished).
  const dir = await mkdtemp(join(tmpdir(), 'edgetl-probe-'));
  let path: string;
  if (typeof model === 'string') {
    path = model;
  } else {
    path = join(dir, 'model.onnx');
    await writeFile(path, model);
  }
  const logPath = join(dir, 'onnxruntime.log');
  const log = await open(logPath, 'w');
  try {
    const stdout = await new Promise<string>((resolveRun, rejectRun) => {
      const child = spawn(process.execPath, ['-e', PROBE_SCRIPT, ortPath, path, JSON.stringify(sessionOptions)], {
        env,
        stdio: ['ignore', 'pipe', log.fd],
      });
      let out = '';
      child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      child.on('error', rejectRun);
      child.on('close', () => resolveRun(out));
    });
    await log.close();
    const stderr = await readFile(logPath, 'utf8');
    const parsed = parseSessionLog(stderr);
    if (stdout.includes('EDGETL_PROBE_OK')) return { created: true, ...parsed };
    const error =
      /EDGETL_PROBE_ERROR (.*)/s.exec(stdout)?.[1] ?? (stderr.trim().split('\n').pop() || 'the probe process died');
    const logErrors = stderr
      .split('\n')
      .filter((line) => /\[E:onnxruntime/.test(line))
      .map((line) => condense(line.replace(/^.*?\[E:onnxruntime[^\]]*\]\s*/, '').replace(/\x1b\[[0-9;]*m/g, '')));
    return { created: false, error: condense(error), ...parsed, ...(logErrors.length ? { logErrors } : {}) };
  } finally {
    await log.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}
