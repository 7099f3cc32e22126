/**
 * What edgetl knows about the CUDA provider package it installs (`edgetl setup cuda`), and which provider builds may
 * run inside which onnxruntime-node core. Read by the installer (cuda-install.ts) and by the detection (providers.ts).
 *
 * onnxruntime's provider bridge has no version check: the core dlopens libonnxruntime_providers_cuda.so, calls its
 * GetProvider() and hands it a ProviderHost, an interface of virtual functions whose layout is not versioned. A
 * provider from another onnxruntime release loads without complaint whether or not the interfaces still agree, so
 * the pairing must be checked here, before the files are placed.
 */

/** The npm package that holds onnxruntime's CUDA 13 provider for linux-x64 (MIT, from the onnxruntime-unity project). */
export const CUDA_PACKAGE = {
  name: 'com.github.asus4.onnxruntime.linux-x64-gpu',
  version: '0.4.9',
  /** The onnxruntime release the provider libraries were built from (its README; the string is in the binary too). */
  onnxruntimeVersion: '1.29.0',
  cudaMajor: 13,
  cudnnMajor: 9,
  /** npm's integrity for the tarball (npm pack checks it; recorded so a local copy can be matched against it). */
  integrity: 'sha512-FopIhNE/Ng+v2X65wVc9clPCBCvhvA53Hxo2U0Kf5fGdVsC7iCA+mZ0KLWggcQAj7TIZ6pNidR4AC10g74Xo6w==',
  /** Folder of the libraries inside the package. */
  libraryDir: 'Plugins/Linux/x64',
} as const;

export const CUDA_PACKAGE_SPEC = `${CUDA_PACKAGE.name}@${CUDA_PACKAGE.version}`;

/** The files onnxruntime loads for CUDA, beside its own library. TensorRT's provider is left out: edgetl doesn't use it. */
export const CUDA_PROVIDER_FILES = ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'] as const;

/** Written beside the placed libraries, last: its presence means the install finished. */
export const CUDA_MANIFEST_FILE = 'edgetl-cuda.json';
export const CUDA_MANIFEST_FORMAT = 'edgetl-cuda-install/1';

export interface CudaInstallManifest {
  format: typeof CUDA_MANIFEST_FORMAT;
  package: string;
  packageVersion: string;
  /** The onnxruntime release the provider was built from. */
  onnxruntimeVersion: string;
  /** onnxruntime-node's version when the files were placed. */
  coreVersion: string;
  cudaMajor: number;
  cudnnMajor: number;
  /** How the version pairing was judged at install time (see providerCoreCompatibility). */
  compatibility: ProviderCoreCompatibility['kind'];
  files: { name: string; bytes: number; sha256: string }[];
  installedAt: string;
  source: string;
}

export interface ProviderCoreCompatibility {
  /** exact: same release. checked: a different release edgetl has checked (see `evidence`). mismatch: refuse. */
  kind: 'exact' | 'checked' | 'mismatch';
  ok: boolean;
  detail: string;
  evidence?: string;
}

/**
 * Pairs of (provider build, core) from different releases that edgetl has checked. Checked how: the 1.29.0 provider
 * was loaded into the 1.30.0 core and into the 1.29.0 core on the same machine with stand-in CUDA libraries (no GPU
 * was at hand; bench/cuda-bridge-check.sh); both created the sessions, assigned the same nodes to CUDA
 * (EfficientNet-B0: all 231; MobileNetV2-int8: 7 of 74), ran them as far as they go without cuDNN and logged the same
 * lines. That exercises the provider bridge (graph, kernel registry, allocators, data transfer) but not the kernels'
 * numbers: the CUDA-vs-CPU cosine on a real GPU (bench/cuda-device-check.sh) is what proves a pair, and
 * `edgetl setup cuda` says so.
 */
export const CHECKED_PROVIDER_CORE_PAIRS: readonly { provider: string; core: string; evidence: string }[] = [
  {
    provider: '1.29.0',
    core: '1.30.',
    evidence:
      'onnxruntime 1.29.0 CUDA provider in the 1.30 core: loads, partitions and runs exactly as in the 1.29.0 core ' +
      '(checked with stand-in CUDA libraries, no GPU); the CUDA-vs-CPU embedding check on a GPU is still to be run',
  },
];

function parseVersion(version: string): [number, number, number] | undefined {
  const match = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  return match ? [Number(match[1]), Number(match[2]), Number(match[3])] : undefined;
}

/** May a provider built from onnxruntime `provider` run inside onnxruntime-node `core`? */
export function providerCoreCompatibility(provider: string, core: string): ProviderCoreCompatibility {
  const p = parseVersion(provider);
  const c = parseVersion(core);
  if (!p || !c) {
    return { kind: 'mismatch', ok: false, detail: `can't compare onnxruntime versions '${provider}' and '${core}'` };
  }
  if (p[0] === c[0] && p[1] === c[1] && p[2] === c[2]) {
    return { kind: 'exact', ok: true, detail: `provider and core are both onnxruntime ${core}` };
  }
  const checked = CHECKED_PROVIDER_CORE_PAIRS.find((pair) => pair.provider === provider && core.startsWith(pair.core));
  if (checked) {
    return {
      kind: 'checked',
      ok: true,
      detail: `provider built from onnxruntime ${provider}, core onnxruntime-node ${core}: a pairing edgetl has checked`,
      evidence: checked.evidence,
    };
  }
  return {
    kind: 'mismatch',
    ok: false,
    detail:
      `the provider was built from onnxruntime ${provider} but onnxruntime-node here is ${core}: onnxruntime's provider ` +
      `bridge has no version check, so a provider from another release may crash or compute wrong results`,
  };
}

export function isCudaInstallManifest(value: unknown): value is CudaInstallManifest {
  if (typeof value !== 'object' || value === null) return false;
  const m = value as Record<string, unknown>;
  return (
    m.format === CUDA_MANIFEST_FORMAT &&
    typeof m.package === 'string' &&
    typeof m.onnxruntimeVersion === 'string' &&
    typeof m.coreVersion === 'string' &&
    typeof m.cudaMajor === 'number' &&
    Array.isArray(m.files)
  );
}
