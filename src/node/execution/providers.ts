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
import { EdgetlError } from '../../core/util/errors.js';
import type {
  AdapterInfo,
  ExecutionProviderName,
  ExecutionProviderRequest,
  ProviderFallback,
} from '../../core/execution/types.js';
import {
  checkLibraries,
  defaultLibrarySearch,
  describeCudaLibrary,
  describeMissingLibrary,
  minimumDriverFor,
  providerCudaNeeds,
  type CudaLibraryCheck,
  type LibrarySearch,
} from './cuda-libraries.js';
import {
  CUDA_MANIFEST_FILE,
  CUDA_PACKAGE,
  isCudaInstallManifest,
  providerCoreCompatibility,
  type CudaInstallManifest,
  type ProviderCoreCompatibility,
} from './cuda-package.js';

export const EXECUTION_PROVIDER_REQUESTS: readonly ExecutionProviderRequest[] = [
  'auto',
  'cpu',
  'webgpu',
  'cuda',
  'wasm',
];

/**
 * The command that installs the CUDA provider from the npm registry (src/node/cli/setup.ts). onnxruntime-node's own
 * `ONNXRUNTIME_NODE_INSTALL=cuda12` fetches CUDA 12 libraries from NuGet instead, which many machines can't reach.
 */
export const CUDA_INSTALL_COMMAND = 'edgetl setup cuda';

export interface CudaFacts {
  /** Folder holding onnxruntime-node's native binding; the CUDA provider library must sit beside it. */
  bindingDir: string | undefined;
  /** onnxruntime-node's version (its package.json): the core the provider runs inside. */
  coreVersion?: string;
  providerLibrary: string | undefined;
  providerLibraryPresent: boolean;
  /** libonnxruntime_providers_shared, loaded first by onnxruntime; missing it fails the same way. */
  sharedLibraryPresent: boolean;
  /** What `edgetl setup cuda` recorded beside the libraries (absent for a provider placed another way). */
  install?: CudaInstallManifest;
  /** The provider's DT_NEEDED entries from the CUDA stack (libcudart.so.13, ...), when its ELF header was readable. */
  providerNeeds?: string[];
  /** CUDA major release the provider is built for (from libcudart.so.N, or the install record). */
  cudaMajor?: number;
  /** Each CUDA/cuDNN library the provider needs, and whether the loader finds it. Empty when there's no provider. */
  libraries?: CudaLibraryCheck[];
  gpuPresent: boolean;
  /** What showed the GPU (a device node, /proc/driver/nvidia, nvidia-smi), or what was looked at without finding one. */
  gpuEvidence: string;
  /** The NVIDIA kernel driver's version (/proc/driver/nvidia/version or nvidia-smi), when seen. */
  driverVersion?: string;
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
  /** onnxruntime-node's package folder (default: the one this module resolves); tests point it at a fake. */
  onnxruntimeDir?: string;
  /** Where CUDA libraries are looked for (default: the loader's search, see cuda-libraries.ts). */
  librarySearch?: Partial<Omit<LibrarySearch, 'env' | 'arch'>>;
}

/** onnxruntime-node's package folder, as `import 'onnxruntime-node'` finds it. */
export function onnxruntimeNodeDir(): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    // <pkg>/dist/index.js -> <pkg>
    return join(dirname(require.resolve('onnxruntime-node')), '..');
  } catch {
    return undefined;
  }
}

/** <pkg>/bin/napi-v<N>/<platform>/<arch>, where the binding and libonnxruntime live (the highest N present). */
export function onnxruntimeBindingDir(packageDir: string, platform: string, arch: string): string {
  const napi = listDir(join(packageDir, 'bin'))
    .filter((n) => /^napi-v\d+$/.test(n) && existsSync(join(packageDir, 'bin', n, platform, arch)))
    .sort((a, b) => Number(b.slice(6)) - Number(a.slice(6)));
  return join(packageDir, 'bin', napi[0] ?? 'napi-v6', platform, arch);
}

export function onnxruntimeNodeVersion(packageDir: string): string | undefined {
  try {
    const version = (JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as { version?: unknown })
      .version;
    return typeof version === 'string' ? version : undefined;
  } catch {
    return undefined;
  }
}

export function readCudaInstallManifest(bindingDir: string): CudaInstallManifest | undefined {
  try {
    const parsed: unknown = JSON.parse(readFileSync(join(bindingDir, CUDA_MANIFEST_FILE), 'utf8'));
    return isCudaInstallManifest(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

function cudaLibraryNames(platform: string): { provider: string; shared: string } | undefined {
  if (platform === 'linux')
    return { provider: 'libonnxruntime_providers_cuda.so', shared: 'libonnxruntime_providers_shared.so' };
  if (platform === 'win32')
    return { provider: 'onnxruntime_providers_cuda.dll', shared: 'onnxruntime_providers_shared.dll' };
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

interface CudaProbe {
  env: NodeJS.ProcessEnv;
  platform: string;
  arch: string;
  devRoot: string;
  runTools: boolean;
  onnxruntimeDir?: string;
  librarySearch?: Partial<Omit<LibrarySearch, 'env' | 'arch'>>;
}

/** The NVIDIA GPU and driver as the kernel shows them: /dev/nvidia*, /proc/driver/nvidia, then nvidia-smi. */
function gatherNvidiaGpu(options: CudaProbe): { gpuPresent: boolean; gpuEvidence: string; driverVersion?: string } {
  const dev = join(options.devRoot, 'dev');
  const proc = join(options.devRoot, 'proc', 'driver', 'nvidia');
  let driverVersion: string | undefined;
  try {
    driverVersion = /Kernel Module(?: for \S+)?\s+(\d+\.\d+(?:\.\d+)?)/.exec(
      readFileSync(join(proc, 'version'), 'utf8'),
    )?.[1];
  } catch {
    driverVersion = undefined;
  }
  const nodes = listDir(dev).filter((n) => /^nvidia\d+$/.test(n) || n === 'nvhost-ctrl-gpu' || n === 'nvgpu');
  const procGpus = listDir(join(proc, 'gpus'));
  const evidence: string[] = [];
  if (nodes.length > 0) evidence.push(`device ${nodes.map((n) => join(dev, n)).join(', ')}`);
  if (procGpus.length > 0) {
    let model = '';
    try {
      model =
        /Model:\s*(.+)/.exec(readFileSync(join(proc, 'gpus', procGpus[0], 'information'), 'utf8'))?.[1]?.trim() ?? '';
    } catch {
      model = '';
    }
    evidence.push(`${join(proc, 'gpus', procGpus[0])}${model ? ` (${model})` : ''}`);
  }
  let gpuPresent = evidence.length > 0;
  let gpuEvidence = gpuPresent ? evidence.join('; ') : `no /dev/nvidia0 (looked in ${dev}), no ${join(proc, 'gpus')}`;
  if ((!gpuPresent || !driverVersion) && options.runTools) {
    const smi = onPath('nvidia-smi', options.env);
    if (smi) {
      const run = spawnSync(smi, ['--query-gpu=name,driver_version', '--format=csv,noheader'], {
        encoding: 'utf8',
        timeout: 5000,
        env: options.env,
      });
      const first = (run.stdout ?? '').split('\n').find((l) => l.includes(','));
      if (run.status === 0 && first) {
        const [name, version] = first.split(',').map((x) => x.trim());
        driverVersion ??= version;
        if (!gpuPresent) {
          gpuPresent = true;
          gpuEvidence = `nvidia-smi: ${name}`;
        }
      } else if (!gpuPresent) {
        gpuEvidence += `; nvidia-smi found no GPU (${(run.stderr || run.stdout || run.error?.message || '').trim().split('\n')[0]})`;
      }
    } else if (!gpuPresent) {
      gpuEvidence += ', no nvidia-smi on PATH';
    }
  }
  return { gpuPresent, gpuEvidence, ...(driverVersion ? { driverVersion } : {}) };
}

function gatherCuda(options: CudaProbe): CudaFacts {
  const packageDir = options.onnxruntimeDir ?? onnxruntimeNodeDir();
  const bindingDir = packageDir ? onnxruntimeBindingDir(packageDir, options.platform, options.arch) : undefined;
  const coreVersion = packageDir ? onnxruntimeNodeVersion(packageDir) : undefined;
  const names = cudaLibraryNames(options.platform);
  const providerLibrary = bindingDir && names ? join(bindingDir, names.provider) : undefined;
  const sharedLibrary = bindingDir && names ? join(bindingDir, names.shared) : undefined;
  const providerLibraryPresent = providerLibrary !== undefined && existsSync(providerLibrary);
  const install = bindingDir ? readCudaInstallManifest(bindingDir) : undefined;
  const gpu = gatherNvidiaGpu(options);

  let providerNeeds: string[] | undefined;
  let cudaMajor: number | undefined;
  let libraries: CudaLibraryCheck[] = [];
  if (providerLibraryPresent && providerLibrary && options.platform === 'linux') {
    const linked = providerCudaNeeds(providerLibrary);
    providerNeeds = linked?.needs;
    cudaMajor = linked?.cudaMajor ?? install?.cudaMajor;
    // A provider whose header can't be read (never seen from a real build) is taken to need what the package's does.
    const link = providerNeeds ?? PACKAGE_PROVIDER_NEEDS;
    cudaMajor ??= CUDA_PACKAGE.cudaMajor;
    // cuDNN isn't a DT_NEEDED: onnxruntime dlopens libcudnn.so.<major> (then libcudnn.so) when the first
    // convolution runs, so a missing cuDNN lets the session open and fails the first image. Checked up front.
    const cudnn = `libcudnn.so.${install?.cudnnMajor ?? CUDA_PACKAGE.cudnnMajor}`;
    const search = {
      ...defaultLibrarySearch(options.env, options.arch, options.runTools && !options.librarySearch),
      ...options.librarySearch,
      env: options.env,
      arch: options.arch,
    };
    libraries = checkLibraries(
      [...link.map((soname) => ({ soname, needed: 'link' as const })), { soname: cudnn, needed: 'runtime' as const }],
      cudaMajor,
      search,
    );
  }
  return {
    bindingDir,
    ...(coreVersion ? { coreVersion } : {}),
    providerLibrary,
    providerLibraryPresent,
    sharedLibraryPresent: sharedLibrary !== undefined && existsSync(sharedLibrary),
    ...(install ? { install } : {}),
    ...(providerNeeds ? { providerNeeds } : {}),
    ...(cudaMajor !== undefined ? { cudaMajor } : {}),
    libraries,
    ...gpu,
  };
}

/** DT_NEEDED of the package's libonnxruntime_providers_cuda.so (readelf -d), CUDA stack only. */
const PACKAGE_PROVIDER_NEEDS = [
  'libcublasLt.so.13',
  'libcublas.so.13',
  'libcurand.so.10',
  'libcudart.so.13',
  'libcuda.so.1',
];

const SOFTWARE_DRIVER = /swiftshader|lvp|lavapipe|llvmpipe|softpipe|mock_icd|VkICD_mock/i;

function classifyIcd(manifest: string, library: string, dev: string, renderNodes: string[]): VulkanIcd {
  const both = `${manifest} ${library}`;
  if (SOFTWARE_DRIVER.test(both)) {
    const name = /swiftshader/i.test(both)
      ? 'SwiftShader'
      : /lvp|lavapipe/i.test(both)
        ? 'lavapipe (llvmpipe)'
        : 'software Vulkan driver';
    return { manifest, library, kind: 'software', name };
  }
  const firstRender = renderNodes[0];
  if (/nvidia/i.test(both)) {
    const nodes = listDir(dev).filter((n) => /^nvidia\d+$/.test(n) || n === 'nvhost-ctrl-gpu' || n === 'nvgpu');
    return { manifest, library, kind: 'nvidia', name: 'NVIDIA', device: nodes[0] ? join(dev, nodes[0]) : firstRender };
  }
  if (/dzn/i.test(both)) {
    const dxg = join(dev, 'dxg');
    return {
      manifest,
      library,
      kind: 'wsl-d3d12',
      name: 'Dozen (WSL D3D12)',
      device: existsSync(dxg) ? dxg : undefined,
    };
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
  if (vendor)
    return {
      manifest,
      library,
      kind: 'mesa-or-vendor',
      name: vendor,
      device: firstRender ?? (vendor === 'Arm Mali' ? mali : undefined),
    };
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
          return statSync(p).isDirectory()
            ? listDir(p)
                .filter((f) => f.endsWith('.json'))
                .map((f) => join(p, f))
            : [p];
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
  const paths = [...new Set(dirs)].flatMap((d) =>
    listDir(d)
      .filter((f) => f.endsWith('.json'))
      .map((f) => join(d, f)),
  );
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
  const cuda = gatherCuda({
    env,
    platform,
    arch,
    devRoot,
    runTools,
    onnxruntimeDir: options.onnxruntimeDir,
    librarySearch: options.librarySearch,
  });
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

/** One thing CUDA lacks here, named so a person can fix it and a program can sort it. */
export interface CudaMissingPiece {
  kind: 'platform' | 'provider' | 'version' | 'library' | 'driver' | 'gpu';
  /** The file, library (with its version) or device that is missing. */
  name: string;
  detail: string;
  /** The command (or step) that fixes it. */
  fix?: string;
}

export interface CudaAssessment {
  /** Provider library, its CUDA/cuDNN libraries, a GPU and a new-enough driver all present: `auto` may pick CUDA. */
  ready: boolean;
  /** Worth trying when asked for explicitly: the provider and every library it loads are there (the GPU may not be). */
  tryable: boolean;
  reason: string;
  /** Everything in the way, in the order it has to be fixed; empty when ready. */
  missing: CudaMissingPiece[];
  /** How the provider's onnxruntime version pairs with the core, when `edgetl setup cuda` recorded it. */
  compatibility?: ProviderCoreCompatibility;
}

function providerInstallHow(platform: string, arch: string): string {
  if (platform === 'linux' && arch === 'x64') {
    return `install it with \`${CUDA_INSTALL_COMMAND}\` (fetches the CUDA ${CUDA_PACKAGE.cudaMajor} provider from the npm registry; it needs the CUDA ${CUDA_PACKAGE.cudaMajor} and cuDNN ${CUDA_PACKAGE.cudnnMajor} libraries at run time)`;
  }
  if (platform === 'linux') {
    return `no CUDA provider is published on npm for linux/${arch} (onnxruntime-node publishes no CUDA build for linux/${arch}, e.g. Jetson): build onnxruntime with CUDA from source, or use \`ep: 'webgpu'\` or \`ep: 'cpu'\``;
  }
  return `onnxruntime-node publishes no CUDA provider for win32/${arch}`;
}

export function assessCuda(facts: HostFacts): CudaAssessment {
  const { cuda, platform, arch } = facts;
  if (platform !== 'linux' && platform !== 'win32') {
    const reason = `CUDA is not available on ${platform}`;
    return { ready: false, tryable: false, reason, missing: [{ kind: 'platform', name: platform, detail: reason }] };
  }
  const missing: CudaMissingPiece[] = [];
  if (!cuda.providerLibraryPresent || !cuda.sharedLibraryPresent) {
    const names = cudaLibraryNames(platform);
    const file = !cuda.providerLibraryPresent ? cuda.providerLibrary : join(cuda.bindingDir ?? '', names?.shared ?? '');
    const how = providerInstallHow(platform, arch);
    const reason = `CUDA provider library not found (${file ?? 'onnxruntime-node is not installed'}): ${how}`;
    const fix = platform === 'linux' && arch === 'x64' ? CUDA_INSTALL_COMMAND : undefined;
    missing.push({ kind: 'provider', name: file ?? 'onnxruntime-node', detail: reason, ...(fix ? { fix } : {}) });
    if (!cuda.gpuPresent)
      missing.push({ kind: 'gpu', name: 'NVIDIA GPU', detail: `no NVIDIA GPU found (${cuda.gpuEvidence})` });
    return { ready: false, tryable: false, reason, missing };
  }
  let compatibility: ProviderCoreCompatibility | undefined;
  if (cuda.install && cuda.coreVersion) {
    compatibility = providerCoreCompatibility(cuda.install.onnxruntimeVersion, cuda.coreVersion);
    if (!compatibility.ok) {
      missing.push({
        kind: 'version',
        name: `onnxruntime ${cuda.install.onnxruntimeVersion} provider in onnxruntime-node ${cuda.coreVersion}`,
        detail: compatibility.detail,
        fix: `${CUDA_INSTALL_COMMAND} (it says which onnxruntime-node the provider needs)`,
      });
    }
  }
  for (const library of (cuda.libraries ?? []).filter((l) => l.path === undefined)) {
    missing.push({
      kind: 'library',
      name: library.soname,
      detail: describeMissingLibrary(library),
      ...(library.fix ? { fix: library.fix } : {}),
    });
  }
  const major = cuda.cudaMajor;
  const driverMajor = cuda.driverVersion ? Number(cuda.driverVersion.split('.')[0]) : undefined;
  if (major !== undefined && driverMajor !== undefined && driverMajor < minimumDriverFor(major)) {
    missing.push({
      kind: 'driver',
      name: `NVIDIA driver ${cuda.driverVersion}`,
      detail: `the NVIDIA driver is ${cuda.driverVersion}, and CUDA ${major} needs ${minimumDriverFor(major)} or newer`,
      fix: describeCudaLibrary('libcuda.so.1', major).fix,
    });
  }
  if (!cuda.gpuPresent)
    missing.push({ kind: 'gpu', name: 'NVIDIA GPU', detail: `no NVIDIA GPU found (${cuda.gpuEvidence})` });

  const blocking = missing.filter((m) => m.kind === 'version' || m.kind === 'library');
  if (missing.length === 0) {
    const libs = cuda.libraries?.length ? `, ${cuda.libraries.length} CUDA/cuDNN libraries found` : '';
    return {
      ready: true,
      tryable: true,
      reason: `CUDA provider library and GPU present (${cuda.gpuEvidence}${libs})`,
      missing,
      ...(compatibility ? { compatibility } : {}),
    };
  }
  const fixes = [...new Set(missing.flatMap((m) => (m.fix ? [m.fix] : [])))];
  const libraries = missing.filter((m) => m.kind === 'library');
  const parts = [
    ...missing.filter((m) => m.kind === 'version').map((m) => m.detail),
    ...(libraries.length ? [`the dynamic loader can't find ${libraries.map((m) => m.detail).join(', ')}`] : []),
    ...missing.filter((m) => m.kind === 'driver' || m.kind === 'gpu').map((m) => m.detail),
  ];
  const reason = `CUDA can't run here: ${parts.join('; ')}${fixes.length ? `. Fix: ${combinedFix(fixes)}` : ''}`;
  return { ready: false, tryable: blocking.length === 0, reason, missing, ...(compatibility ? { compatibility } : {}) };
}

/** apt-get lines merged into one; other steps kept as they are. */
function combinedFix(fixes: string[]): string {
  const apt = fixes
    .filter((f) => f.startsWith('apt-get install '))
    .flatMap((f) => f.slice('apt-get install '.length).split(' '));
  const other = fixes.filter((f) => !f.startsWith('apt-get install '));
  return [
    ...(apt.length ? [`apt-get install ${[...new Set(apt)].join(' ')} (NVIDIA's CUDA apt repository)`] : []),
    ...other,
  ].join('; ');
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

/** Before Vulkan is looked at: a build without WebGPU, macOS (Metal), or a platform whose adapter can't be told. */
function webGpuByPlatform(facts: HostFacts): WebGpuAssessment | undefined {
  const built = facts.supportedBackends?.find((b) => b.name === 'webgpu');
  if (facts.supportedBackends && !built) {
    return {
      hardware: false,
      tryable: false,
      hardwareManifests: [],
      reason: 'this onnxruntime-node build has no WebGPU provider',
    };
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
      reason: `can't verify that the WebGPU adapter is a hardware GPU on ${facts.platform}; ask for \`ep: 'webgpu'\` to choose it explicitly`,
    };
  }
  return undefined;
}

/** vulkaninfo, when installed, enumerates the real devices through the same loader: trust it over our reading. */
function webGpuFromVulkaninfo(
  devices: NonNullable<HostFacts['vulkan']['vulkaninfoDevices']>,
  hardwareManifests: string[],
): WebGpuAssessment | undefined {
  const real = devices.filter((d) => !/CPU/i.test(d.type) && !SOFTWARE_DRIVER.test(d.name));
  const cpu = devices.filter((d) => /CPU/i.test(d.type) || SOFTWARE_DRIVER.test(d.name));
  if (real.length > 0) {
    return {
      hardware: true,
      tryable: true,
      hardwareManifests,
      adapter: {
        device: real[0].name,
        description: `${real[0].name} (${real[0].type}, from vulkaninfo)`,
        software: false,
      },
      reason: `hardware Vulkan device ${real[0].name}`,
    };
  }
  if (cpu.length > 0) {
    return {
      hardware: false,
      tryable: true,
      hardwareManifests: [],
      adapter: {
        device: cpu[0].name,
        description: `${cpu[0].name} (${cpu[0].type}, from vulkaninfo)`,
        software: true,
      },
      reason: `only a software WebGPU adapter is available (${cpu.map((d) => d.name).join(', ')}, per vulkaninfo); auto never picks one: it is far slower than the CPU provider`,
    };
  }
  return undefined;
}

/** Hardware Vulkan drivers with a device node to drive. */
function hardwareDrivers(vulkan: HostFacts['vulkan']): HostFacts['vulkan']['icds'] {
  return vulkan.icds.filter((i) => i.kind !== 'software' && i.device !== undefined);
}

/** From the Vulkan drivers (ICD manifests) and device nodes found: hardware, software only, or nothing usable. */
function webGpuFromDrivers(vulkan: HostFacts['vulkan']): WebGpuAssessment {
  const software = vulkan.icds.filter((i) => i.kind === 'software');
  const hardware = hardwareDrivers(vulkan);
  const hardwareWithoutDevice = vulkan.icds.filter((i) => i.kind !== 'software' && i.device === undefined);
  const softwareNames = [...new Set(software.map((i) => i.name))].join(', ');
  const where = vulkan.overriddenBy ? `${vulkan.overriddenBy}` : 'the Vulkan driver folders';
  if (hardware.length > 0) {
    const first = hardware[0];
    return {
      hardware: true,
      tryable: true,
      hardwareManifests: hardware.map((i) => i.manifest),
      adapter: {
        vendor: first.name,
        description: `${first.name} Vulkan driver (${first.library}) on ${first.device}`,
        software: false,
      },
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
  return {
    hardware: false,
    tryable: hardwareWithoutDevice.length > 0,
    hardwareManifests: [],
    reason: `no WebGPU adapter: ${drivers}`,
  };
}

export function assessWebGpu(facts: HostFacts): WebGpuAssessment {
  const byPlatform = webGpuByPlatform(facts);
  if (byPlatform) return byPlatform;
  const { vulkan } = facts;
  if (!vulkan.loader) {
    return {
      hardware: false,
      tryable: false,
      hardwareManifests: [],
      reason:
        'no Vulkan loader (libvulkan.so.1) found, which WebGPU needs on Linux: install it (Debian/Ubuntu: apt-get install libvulkan1) and a GPU driver',
    };
  }
  const hardwareManifests = hardwareDrivers(vulkan).map((i) => i.manifest);
  const fromVulkaninfo = vulkan.vulkaninfoDevices
    ? webGpuFromVulkaninfo(vulkan.vulkaninfoDevices, hardwareManifests)
    : undefined;
  return fromVulkaninfo ?? webGpuFromDrivers(vulkan);
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
    throw new EdgetlError(
      'bad-input',
      `unknown execution provider '${String(request)}': use one of ${EXECUTION_PROVIDER_REQUESTS.join(', ')}`,
    );
  }
  const cuda = assessCuda(facts);
  const webgpu = assessWebGpu(facts);
  const skipped: ProviderFallback[] = [];
  const candidates: ExecutionProviderName[] = [];
  const unavailable = (provider: ExecutionProviderName, reason: string) => {
    if (strictEp)
      throw new EdgetlError('ep-unavailable', `\`ep: '${provider}'\` can't run here (\`strictEp\`): ${reason}`);
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
      unavailable(
        'wasm',
        "wasm is onnxruntime-web's browser provider; in Node the CPU provider runs the same model natively and faster",
      );
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
  const adapter =
    report.used === 'webgpu' && report.adapter
      ? ` on ${report.adapter.device ?? report.adapter.description ?? 'an adapter'}${report.adapter.software ? ' (software adapter: for correctness only, far slower than cpu)' : ''}`
      : '';
  const why = report.fallbacks.map((f) => `${f.provider} not used: ${f.reason}`).join('; ');
  return `${report.used}${adapter}${why ? ` (${why})` : ''}`;
}
