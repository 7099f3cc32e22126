/**
 * Which execution provider can really run here, and why the others can't. Node only (reads /dev, ICD manifests,
 * runs nvidia-smi / vulkaninfo when present); onnxruntime itself is touched only in session.ts.
 *
 * The rules (`planProviders`):
 * - `auto`: CUDA when its provider library AND an NVIDIA GPU are both present; else WebGPU when a hardware adapter is
 *   (a hardware Vulkan driver with its device node on Linux, Metal on macOS); else CPU. A software adapter
 *   (SwiftShader, lavapipe/llvmpipe) is never picked automatically: it is ~100x slower than the CPU provider.
 * - an explicit provider is tried when it can possibly run; a software WebGPU adapter runs but is reported as such.
 * - every provider skipped or failed is recorded with the reason; `strictEp` turns that into an error.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join, resolve, isAbsolute, delimiter } from 'node:path';
import { homedir } from 'node:os';
import { EdgetlError } from '../util/errors.js';
import type { AdapterInfo, ExecutionProviderName, ExecutionProviderRequest, ProviderFallback } from './types.js';

export const EXECUTION_PROVIDER_REQUESTS: readonly ExecutionProviderRequest[] = ['auto', 'cpu', 'webgpu', 'cuda', 'wasm'];

/** The exact command that fetches onnxruntime-node's CUDA provider (verified against its script/install.js 1.30). */
export const CUDA_INSTALL_COMMAND = 'ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node';

export interface CudaFacts {
  /** Folder holding onnxruntime-node's native binding; the CUDA provider library must sit beside it. */
  bindingDir: string | undefined;
  providerLibrary: string | undefined;
  providerLibraryPresent: boolean;
  /** libonnxruntime_providers_shared, loaded first by onnxruntime; missing it fails the same way. */
  sharedLibraryPresent: boolean;
  gpuPresent: boolean;
  /** What showed the GPU (a device node, nvidia-smi), or what was looked at without finding one. */
  gpuEvidence: string;
}

export type IcdKind = 'software' | 'nvidia' | 'mesa-or-vendor' | 'wsl-d3d12' | 'unknown';

export interface VulkanIcd {
  /** The manifest (.json) file. */
  manifest: string;
  /** The driver library it names. */
  library: string;
  kind: IcdKind;
  /** A human name for the driver (SwiftShader, lavapipe, NVIDIA, Intel, ...). */
  name: string;
  /** For hardware drivers: the device node that shows its GPU is really there, if found. */
  device?: string;
}

export interface VulkanFacts {
  /** libvulkan.so.1 as found, or undefined when there is no Vulkan loader (WebGPU can't start). */
  loader: string | undefined;
  /** Env var that replaces the driver search (VK_DRIVER_FILES or VK_ICD_FILENAMES), when set. */
  overriddenBy?: string;
  icds: VulkanIcd[];
  renderNodes: string[];
  /** Devices `vulkaninfo --summary` listed, when that tool is installed: the most direct evidence. */
  vulkaninfoDevices?: { name: string; type: string }[];
}

export interface HostFacts {
  platform: NodeJS.Platform;
  arch: string;
  /** Providers compiled into this onnxruntime-node build (`listSupportedBackends`), when known. */
  supportedBackends?: { name: string; bundled: boolean }[];
  cuda: CudaFacts;
  vulkan: VulkanFacts;
}

/** Where to look; tests point it at a fake /dev or ICD folder. */
export interface HostProbeOptions {
  env?: NodeJS.ProcessEnv;
  platform?: NodeJS.Platform;
  arch?: string;
  /** Root for /dev paths (default '/'). */
  devRoot?: string;
  /** Run nvidia-smi / vulkaninfo / ldconfig when they are on PATH (default true). */
  runTools?: boolean;
  /** Folders searched for libvulkan.so.1 (default: LD_LIBRARY_PATH and the usual lib folders). */
  loaderSearchDirs?: string[];
}

function onnxruntimeBindingDir(platform: string, arch: string): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    const entry = require.resolve('onnxruntime-node');
    // <pkg>/dist/index.js -> <pkg>/bin/napi-v6/<platform>/<arch>, where the binding and libonnxruntime live.
    return join(dirname(entry), '..', 'bin', 'napi-v6', platform, arch);
  } catch {
    return undefined;
  }
}

function cudaLibraryNames(platform: string): { provider: string; shared: string } | undefined {
  if (platform === 'linux') return { provider: 'libonnxruntime_providers_cuda.so', shared: 'libonnxruntime_providers_shared.so' };
  if (platform === 'win32') return { provider: 'onnxruntime_providers_cuda.dll', shared: 'onnxruntime_providers_shared.dll' };
  return undefined;
}

function onPath(tool: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, tool);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function gatherCuda(options: { env: NodeJS.ProcessEnv; platform: string; arch: string; devRoot: string; runTools: boolean }): CudaFacts {
  const bindingDir = onnxruntimeBindingDir(options.platform, options.arch);
  const names = cudaLibraryNames(options.platform);
  const providerLibrary = bindingDir && names ? join(bindingDir, names.provider) : undefined;
  const sharedLibrary = bindingDir && names ? join(bindingDir, names.shared) : undefined;
  const dev = join(options.devRoot, 'dev');
  const nodes = listDir(dev).filter((n) => /^nvidia\d+$/.test(n) || n === 'nvhost-ctrl-gpu' || n === 'nvgpu');
  let gpuPresent = nodes.length > 0;
  let gpuEvidence = gpuPresent ? `device ${nodes.map((n) => join(dev, n)).join(', ')}` : `no /dev/nvidia0 (looked in ${dev})`;
  if (!gpuPresent && options.runTools) {
    const smi = onPath('nvidia-smi', options.env);
    if (smi) {
      const run = spawnSync(smi, ['-L'], { encoding: 'utf8', timeout: 5000, env: options.env });
      const gpus = (run.stdout ?? '').split('\n').filter((l) => /^GPU \d+:/.test(l));
      if (run.status === 0 && gpus.length > 0) {
        gpuPresent = true;
        gpuEvidence = `nvidia-smi -L: ${gpus[0].trim()}`;
      } else {
        gpuEvidence += `; nvidia-smi -L found no GPU (${(run.stderr || run.stdout || run.error?.message || '').trim().split('\n')[0]})`;
      }
    } else {
      gpuEvidence += ', no nvidia-smi on PATH';
    }
  }
  return {
    bindingDir,
    providerLibrary,
    providerLibraryPresent: providerLibrary !== undefined && existsSync(providerLibrary),
    sharedLibraryPresent: sharedLibrary !== undefined && existsSync(sharedLibrary),
    gpuPresent,
    gpuEvidence,
  };
}

const SOFTWARE_DRIVER = /swiftshader|lvp|lavapipe|llvmpipe|softpipe|mock_icd|VkICD_mock/i;

function classifyIcd(manifest: string, library: string, dev: string, renderNodes: string[]): VulkanIcd {
  const both = `${manifest} ${library}`;
  if (SOFTWARE_DRIVER.test(both)) {
    const name = /swiftshader/i.test(both) ? 'SwiftShader' : /lvp|lavapipe/i.test(both) ? 'lavapipe (llvmpipe)' : 'software Vulkan driver';
    return { manifest, library, kind: 'software', name };
  }
  const firstRender = renderNodes[0];
  if (/nvidia/i.test(both)) {
    const nodes = listDir(dev).filter((n) => /^nvidia\d+$/.test(n) || n === 'nvhost-ctrl-gpu' || n === 'nvgpu');
    return { manifest, library, kind: 'nvidia', name: 'NVIDIA', device: nodes[0] ? join(dev, nodes[0]) : firstRender };
  }
  if (/dzn/i.test(both)) {
    const dxg = join(dev, 'dxg');
    return { manifest, library, kind: 'wsl-d3d12', name: 'Dozen (WSL D3D12)', device: existsSync(dxg) ? dxg : undefined };
  }
  const vendor = /intel/i.test(both)
    ? 'Intel'
    : /radeon|amd/i.test(both)
      ? 'AMD'
      : /freedreno|adreno/i.test(both)
        ? 'Qualcomm Adreno'
        : /panfrost|mali/i.test(both)
          ? 'Arm Mali'
          : /broadcom|v3dv/i.test(both)
            ? 'Broadcom (Raspberry Pi)'
            : /virtio/i.test(both)
              ? 'virtio-gpu'
              : /asahi|powervr|imagination|nouveau/i.test(both)
                ? 'GPU'
                : undefined;
  const mali = existsSync(join(dev, 'mali0')) ? join(dev, 'mali0') : undefined;
  if (vendor) return { manifest, library, kind: 'mesa-or-vendor', name: vendor, device: firstRender ?? (vendor === 'Arm Mali' ? mali : undefined) };
  return { manifest, library, kind: 'unknown', name: library, device: firstRender };
}

function readIcdManifest(path: string): string | undefined {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as { ICD?: { library_path?: unknown } };
    const library = parsed.ICD?.library_path;
    if (typeof library !== 'string') return undefined;
    return isAbsolute(library) || !library.includes('/') ? library : resolve(dirname(path), library);
  } catch {
    return undefined;
  }
}

/** ICD manifest search, as the Khronos loader does it on Linux. */
function icdManifestPaths(env: NodeJS.ProcessEnv): { paths: string[]; overriddenBy?: string } {
  const override = env.VK_DRIVER_FILES ? 'VK_DRIVER_FILES' : env.VK_ICD_FILENAMES ? 'VK_ICD_FILENAMES' : undefined;
  const expand = (list: string) =>
    list
      .split(':')
      .filter(Boolean)
      .flatMap((p) => {
        try {
          return statSync(p).isDirectory() ? listDir(p).filter((f) => f.endsWith('.json')).map((f) => join(p, f)) : [p];
        } catch {
          return [p];
        }
      });
  if (override) return { paths: expand(env[override] ?? ''), overriddenBy: override };
  const configDirs = (env.XDG_CONFIG_DIRS || '/etc/xdg').split(':');
  const dataDirs = (env.XDG_DATA_DIRS || '/usr/local/share:/usr/share').split(':');
  const home = env.HOME || homedir();
  const dirs = [
    ...configDirs.map((d) => join(d, 'vulkan', 'icd.d')),
    '/etc/vulkan/icd.d',
    ...dataDirs.map((d) => join(d, 'vulkan', 'icd.d')),
    join(home, '.local', 'share', 'vulkan', 'icd.d'),
  ];
  const paths = [...new Set(dirs)].flatMap((d) => listDir(d).filter((f) => f.endsWith('.json')).map((f) => join(d, f)));
  if (env.VK_ADD_DRIVER_FILES) paths.push(...expand(env.VK_ADD_DRIVER_FILES));
  return { paths };
}

function findVulkanLoader(env: NodeJS.ProcessEnv, runTools: boolean, searchDirs?: string[]): string | undefined {
  const dirs = searchDirs ?? [
    ...(env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean),
    '/usr/lib/x86_64-linux-gnu',
    '/usr/lib/aarch64-linux-gnu',
    '/usr/lib/arm-linux-gnueabihf',
    '/usr/lib64',
    '/usr/lib',
    '/usr/local/lib',
    '/lib/x86_64-linux-gnu',
    '/lib/aarch64-linux-gnu',
  ];
  for (const d of dirs) {
    const candidate = join(d, 'libvulkan.so.1');
    if (existsSync(candidate)) return candidate;
  }
  if (runTools) {
    const run = spawnSync('ldconfig', ['-p'], { encoding: 'utf8', timeout: 5000 });
    const line = (run.stdout ?? '').split('\n').find((l) => l.includes('libvulkan.so.1'));
    const path = line?.split('=>')[1]?.trim();
    if (path) return path;
  }
  return undefined;
}

function runVulkaninfo(env: NodeJS.ProcessEnv): { name: string; type: string }[] | undefined {
  const tool = onPath('vulkaninfo', env);
  if (!tool) return undefined;
  const run = spawnSync(tool, ['--summary'], { encoding: 'utf8', timeout: 10000, env });
  if (run.status !== 0 || !run.stdout) return undefined;
  const devices: { name: string; type: string }[] = [];
  let type: string | undefined;
  for (const line of run.stdout.split('\n')) {
    const typeMatch = /deviceType\s*=\s*(\S+)/.exec(line);
    if (typeMatch) type = typeMatch[1];
    const nameMatch = /deviceName\s*=\s*(.+)$/.exec(line);
    if (nameMatch && type) {
      devices.push({ name: nameMatch[1].trim(), type });
      type = undefined;
    }
  }
  return devices.length > 0 ? devices : undefined;
}

/** Look at the machine: CUDA library and GPU, Vulkan loader, drivers and device nodes. Cheap (stat, readdir). */
export function gatherHostFacts(options: HostProbeOptions = {}): HostFacts {
  const env = options.env ?? process.env;
  const platform = options.platform ?? process.platform;
  const arch = options.arch ?? process.arch;
  const devRoot = options.devRoot ?? '/';
  const runTools = options.runTools ?? true;
  const cuda = gatherCuda({ env, platform, arch, devRoot, runTools });
  const dev = join(devRoot, 'dev');
  const renderNodes = listDir(join(dev, 'dri'))
    .filter((n) => n.startsWith('renderD'))
    .map((n) => join(dev, 'dri', n));
  let vulkan: VulkanFacts = { loader: undefined, icds: [], renderNodes };
  if (platform === 'linux') {
    const { paths, overriddenBy } = icdManifestPaths(env);
    const icds = paths.flatMap((manifest) => {
      const library = readIcdManifest(manifest);
      return library ? [classifyIcd(manifest, library, dev, renderNodes)] : [];
    });
    const loader = findVulkanLoader(env, runTools, options.loaderSearchDirs);
    vulkan = { loader, icds, renderNodes, ...(overriddenBy ? { overriddenBy } : {}) };
    if (runTools && loader) {
      const devices = runVulkaninfo(env);
      if (devices) vulkan.vulkaninfoDevices = devices;
    }
  }
  return { platform, arch, cuda, vulkan };
}

export interface CudaAssessment {
  /** Provider library present and a GPU seen: `auto` may pick CUDA. */
  ready: boolean;
  /** Worth trying when asked for explicitly (the library is there; onnxruntime will say what else is missing). */
  tryable: boolean;
  reason: string;
}

export function assessCuda(facts: HostFacts): CudaAssessment {
  const { cuda, platform, arch } = facts;
  if (platform !== 'linux' && platform !== 'win32') {
    return { ready: false, tryable: false, reason: `CUDA is not available on ${platform}` };
  }
  if (!cuda.providerLibraryPresent || !cuda.sharedLibraryPresent) {
    const missing = !cuda.providerLibraryPresent ? cuda.providerLibrary : join(cuda.bindingDir ?? '', 'libonnxruntime_providers_shared.so');
    let how: string;
    if (platform === 'linux' && arch === 'x64') {
      how =
        `install it with \`${CUDA_INSTALL_COMMAND}\` (downloads Microsoft.ML.OnnxRuntime.Gpu.Linux from NuGet, so it ` +
        `needs internet access; this project's .npmrc skips that download by default) and make sure the CUDA 12 ` +
        `runtime and cuDNN 9 libraries are installed`;
    } else if (platform === 'linux') {
      how = `onnxruntime-node publishes no CUDA build for linux/${arch} (e.g. Jetson): build onnxruntime with CUDA from source, or use --ep webgpu or cpu`;
    } else {
      how = `onnxruntime-node publishes no CUDA provider for win32/${arch}`;
    }
    return {
      ready: false,
      tryable: false,
      reason: `CUDA provider library not found (${missing ?? 'onnxruntime-node is not installed'}): ${how}`,
    };
  }
  if (!cuda.gpuPresent) {
    return { ready: false, tryable: true, reason: `no NVIDIA GPU found (${cuda.gpuEvidence})` };
  }
  return { ready: true, tryable: true, reason: `CUDA provider library and GPU present (${cuda.gpuEvidence})` };
}

export interface WebGpuAssessment {
  /** A hardware adapter is there: `auto` may pick WebGPU. */
  hardware: boolean;
  /** Worth trying when asked for explicitly. */
  tryable: boolean;
  /** The adapter WebGPU will get when tried, as far as can be told. */
  adapter?: AdapterInfo;
  /**
   * Manifests of the hardware drivers. Handing onnxruntime only these (VK_DRIVER_FILES) guarantees Dawn can't
   * fall back to a software adapter behind our back.
   */
  hardwareManifests: string[];
  reason: string;
}

export function assessWebGpu(facts: HostFacts): WebGpuAssessment {
  const built = facts.supportedBackends?.find((b) => b.name === 'webgpu');
  if (facts.supportedBackends && !built) {
    return { hardware: false, tryable: false, hardwareManifests: [], reason: 'this onnxruntime-node build has no WebGPU provider' };
  }
  if (facts.platform === 'darwin') {
    return {
      hardware: true,
      tryable: true,
      hardwareManifests: [],
      adapter: { description: 'Metal (Apple GPU)', software: false },
      reason: 'WebGPU runs on Metal',
    };
  }
  if (facts.platform !== 'linux') {
    return {
      hardware: false,
      tryable: true,
      hardwareManifests: [],
      reason: `can't verify that the WebGPU adapter is a hardware GPU on ${facts.platform}; use --ep webgpu to choose it explicitly`,
    };
  }
  const { vulkan } = facts;
  if (!vulkan.loader) {
    return {
      hardware: false,
      tryable: false,
      hardwareManifests: [],
      reason: 'no Vulkan loader (libvulkan.so.1) found, which WebGPU needs on Linux: install it (Debian/Ubuntu: apt-get install libvulkan1) and a GPU driver',
    };
  }
  const software = vulkan.icds.filter((i) => i.kind === 'software');
  const hardware = vulkan.icds.filter((i) => i.kind !== 'software' && i.device !== undefined);
  const hardwareWithoutDevice = vulkan.icds.filter((i) => i.kind !== 'software' && i.device === undefined);
  const softwareNames = [...new Set(software.map((i) => i.name))].join(', ');
  const where = vulkan.overriddenBy ? `${vulkan.overriddenBy}` : 'the Vulkan driver folders';

  // vulkaninfo, when installed, enumerates the real devices through the same loader: trust it over our reading.
  if (vulkan.vulkaninfoDevices) {
    const real = vulkan.vulkaninfoDevices.filter((d) => !/CPU/i.test(d.type) && !SOFTWARE_DRIVER.test(d.name));
    const cpu = vulkan.vulkaninfoDevices.filter((d) => /CPU/i.test(d.type) || SOFTWARE_DRIVER.test(d.name));
    if (real.length > 0) {
      return {
        hardware: true,
        tryable: true,
        hardwareManifests: hardware.map((i) => i.manifest),
        adapter: { device: real[0].name, description: `${real[0].name} (${real[0].type}, from vulkaninfo)`, software: false },
        reason: `hardware Vulkan device ${real[0].name}`,
      };
    }
    if (cpu.length > 0) {
      return {
        hardware: false,
        tryable: true,
        hardwareManifests: [],
        adapter: { device: cpu[0].name, description: `${cpu[0].name} (${cpu[0].type}, from vulkaninfo)`, software: true },
        reason: `only a software WebGPU adapter is available (${cpu.map((d) => d.name).join(', ')}, per vulkaninfo); auto never picks one: it is far slower than the CPU provider`,
      };
    }
  }
  if (hardware.length > 0) {
    const first = hardware[0];
    return {
      hardware: true,
      tryable: true,
      hardwareManifests: hardware.map((i) => i.manifest),
      adapter: { vendor: first.name, description: `${first.name} Vulkan driver (${first.library}) on ${first.device}`, software: false },
      reason: `hardware Vulkan driver ${first.name} with device ${first.device}`,
    };
  }
  if (software.length > 0) {
    const unusable = hardwareWithoutDevice.length
      ? ` (drivers ${[...new Set(hardwareWithoutDevice.map((i) => i.name))].join(', ')} are installed but no GPU device node such as /dev/dri/renderD128 exists)`
      : '';
    return {
      hardware: false,
      tryable: true,
      hardwareManifests: [],
      adapter: {
        device: software[0].name,
        description: `${software[0].name} (software Vulkan, ${software[0].library}, from ${where})`,
        software: true,
      },
      reason: `only a software WebGPU adapter is available (${softwareNames}, from ${where})${unusable}; auto never picks one: it is far slower than the CPU provider`,
    };
  }
  const drivers = hardwareWithoutDevice.length
    ? `Vulkan drivers ${[...new Set(hardwareWithoutDevice.map((i) => i.name))].join(', ')} are installed but no GPU device node (/dev/dri/renderD*, /dev/nvidia0) exists`
    : `no Vulkan driver found (${where})`;
  return { hardware: false, tryable: hardwareWithoutDevice.length > 0, hardwareManifests: [], reason: `no WebGPU adapter: ${drivers}` };
}

export interface ProviderPlan {
  /** Providers to try, in order; the first whose session opens is used. Always ends with 'cpu' unless strict. */
  candidates: ExecutionProviderName[];
  /** Providers skipped before trying, with the reason. */
  skipped: ProviderFallback[];
  webgpu: WebGpuAssessment;
  cuda: CudaAssessment;
}

export function isExecutionProviderRequest(value: string): value is ExecutionProviderRequest {
  return (EXECUTION_PROVIDER_REQUESTS as readonly string[]).includes(value);
}

/**
 * Decide what to try, from the facts alone (no onnxruntime). With `strictEp`, a requested provider that can't run
 * throws EdgetlError('ep-unavailable') with the reason instead of being skipped.
 */
export function planProviders(request: ExecutionProviderRequest, facts: HostFacts, strictEp = false): ProviderPlan {
  if (!isExecutionProviderRequest(request)) {
    throw new EdgetlError('bad-input', `unknown execution provider '${String(request)}': use one of ${EXECUTION_PROVIDER_REQUESTS.join(', ')}`);
  }
  const cuda = assessCuda(facts);
  const webgpu = assessWebGpu(facts);
  const skipped: ProviderFallback[] = [];
  const candidates: ExecutionProviderName[] = [];
  const unavailable = (provider: ExecutionProviderName, reason: string) => {
    if (strictEp) throw new EdgetlError('ep-unavailable', `--ep ${provider} can't run here (strict): ${reason}`);
    skipped.push({ provider, reason });
  };
  switch (request) {
    case 'cpu':
      break;
    case 'cuda':
      if (cuda.tryable) candidates.push('cuda');
      else unavailable('cuda', cuda.reason);
      break;
    case 'webgpu':
      if (webgpu.tryable) candidates.push('webgpu');
      else unavailable('webgpu', webgpu.reason);
      break;
    case 'wasm':
      unavailable('wasm', "wasm is onnxruntime-web's browser provider; in Node the CPU provider runs the same model natively and faster");
      break;
    case 'auto':
      if (cuda.ready) candidates.push('cuda');
      else skipped.push({ provider: 'cuda', reason: cuda.reason });
      if (webgpu.hardware) candidates.push('webgpu');
      else skipped.push({ provider: 'webgpu', reason: webgpu.reason });
      break;
  }
  candidates.push('cpu');
  return { candidates, skipped, webgpu, cuda };
}

/** One line for people: "cpu (cuda skipped: ...; webgpu skipped: ...)". */
export function describeProviderChoice(report: {
  used: ExecutionProviderName;
  fallbacks: ProviderFallback[];
  adapter?: AdapterInfo;
}): string {
  const adapter = report.used === 'webgpu' && report.adapter ? ` on ${report.adapter.device ?? report.adapter.description ?? 'an adapter'}${report.adapter.software ? ' (software adapter: for correctness only, far slower than cpu)' : ''}` : '';
  const why = report.fallbacks.map((f) => `${f.provider} not used: ${f.reason}`).join('; ');
  return `${report.used}${adapter}${why ? ` (${why})` : ''}`;
}
