import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import os from 'node:os';
import { EDGETL_VERSION } from '../../core/version.js';

/** The machine a result came from: what an engineer needs to reproduce or discount it. */
export interface HostFacts {
  cpuModel: string;
  /** Logical CPUs the OS reports. */
  logicalCores: number;
  /** Distinct (physical id, core id) pairs in /proc/cpuinfo; undefined where it does not say. */
  physicalCores?: number;
  arch: string;
  /** Vector instruction sets that matter to onnxruntime's kernels. */
  isa: {
    sse4_2: boolean;
    avx: boolean;
    avx2: boolean;
    fma: boolean;
    avx512f: boolean;
    avx512vnni: boolean;
    avxVnni: boolean;
    amx: boolean;
    neon: boolean;
    dotprod: boolean;
    sve: boolean;
  };
  /** Every flag /proc/cpuinfo lists (flags on x86, Features on Arm). */
  cpuFlags: string[];
  cpuMhz?: number;
  memoryMb: number;
  os: { platform: string; release: string; distribution?: string };
  /** Load average (1, 5, 15 min) when the run started: a loaded machine gives slower, noisier figures. */
  loadAverage: number[];
  node: string;
  onnxruntime: { node?: string; web?: string };
  edgetl: string;
  hostname: string;
  virtualized?: boolean;
}

interface CpuInfo {
  model?: string;
  flags: string[];
  physicalCores?: number;
  mhz?: number;
  hypervisor: boolean;
}

/** Parses /proc/cpuinfo text (x86 and Arm formats). Exported for tests. */
export function parseCpuInfo(text: string): CpuInfo {
  let model: string | undefined;
  let hardware: string | undefined;
  let armPart: string | undefined;
  let flags: string[] = [];
  let mhz: number | undefined;
  const cores = new Set<string>();
  let physicalId = '0';
  for (const line of text.split('\n')) {
    const separator = line.indexOf(':');
    if (separator < 0) continue;
    const key = line.slice(0, separator).trim().toLowerCase();
    const value = line.slice(separator + 1).trim();
    if (key === 'model name' && !model) model = value;
    else if ((key === 'model' || key === 'hardware') && !hardware && /[a-z]/i.test(value)) hardware = value;
    else if (key === 'cpu part' && !armPart) armPart = value;
    else if ((key === 'flags' || key === 'features') && flags.length === 0) flags = value.split(/\s+/).filter(Boolean);
    else if (key === 'cpu mhz' && mhz === undefined) mhz = Number(value);
    else if (key === 'physical id') physicalId = value;
    else if (key === 'core id') cores.add(`${physicalId}:${value}`);
  }
  const armParts: Record<string, string> = {
    '0xd0b': 'Cortex-A76',
    '0xd08': 'Cortex-A72',
    '0xd03': 'Cortex-A53',
    '0xd05': 'Cortex-A55',
    '0xd42': 'Cortex-A78AE',
    '0xd41': 'Cortex-A78',
  };
  const described =
    model ??
    (hardware
      ? `${hardware}${armPart && armParts[armPart] ? ` (${armParts[armPart]})` : ''}`
      : armPart
        ? (armParts[armPart] ?? `Arm part ${armPart}`)
        : undefined);
  return {
    model: described,
    flags,
    physicalCores: cores.size > 0 ? cores.size : undefined,
    mhz: Number.isFinite(mhz) ? mhz : undefined,
    hypervisor: flags.includes('hypervisor'),
  };
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function distribution(): string | undefined {
  const text = readText('/etc/os-release');
  const match = text?.match(/^PRETTY_NAME="?([^"\n]*)"?/m);
  return match?.[1];
}

/** A package's version from its package.json, found beside its entry point (no import of the package itself). */
function packageVersion(name: string): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    let dir = dirname(require.resolve(name));
    for (let i = 0; i < 6; i++) {
      const candidate = join(dir, 'package.json');
      if (existsSync(candidate)) {
        const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
        if (pkg.name === name) return pkg.version;
      }
      dir = dirname(dir);
    }
  } catch {
    return undefined;
  }
  return undefined;
}

export function collectHostFacts(): HostFacts {
  const cpuinfo = parseCpuInfo(readText('/proc/cpuinfo') ?? '');
  const cpus = os.cpus();
  const flags = new Set(cpuinfo.flags);
  const arch = os.arch();
  return {
    cpuModel: cpuinfo.model ?? cpus[0]?.model ?? 'unknown',
    logicalCores: cpus.length,
    physicalCores: cpuinfo.physicalCores,
    arch,
    isa: {
      sse4_2: flags.has('sse4_2'),
      avx: flags.has('avx'),
      avx2: flags.has('avx2'),
      fma: flags.has('fma'),
      avx512f: flags.has('avx512f'),
      avx512vnni: flags.has('avx512_vnni'),
      avxVnni: flags.has('avx_vnni'),
      amx: flags.has('amx_tile'),
      // arm64 makes Advanced SIMD mandatory; /proc/cpuinfo calls it asimd.
      neon: flags.has('neon') || flags.has('asimd') || arch === 'arm64',
      dotprod: flags.has('asimddp'),
      sve: flags.has('sve'),
    },
    cpuFlags: cpuinfo.flags,
    cpuMhz: cpuinfo.mhz ?? (cpus[0]?.speed || undefined),
    memoryMb: Math.round(os.totalmem() / 2 ** 20),
    os: { platform: os.platform(), release: os.release(), distribution: distribution() },
    loadAverage: os.loadavg().map((v) => Math.round(v * 100) / 100),
    node: process.version,
    onnxruntime: { node: packageVersion('onnxruntime-node'), web: packageVersion('onnxruntime-web') },
    edgetl: EDGETL_VERSION,
    hostname: os.hostname(),
    virtualized: cpuinfo.hypervisor || undefined,
  };
}

/** One line naming the machine, e.g. for report headers and tuned profiles. */
export function describeHost(host: HostFacts): string {
  const isa = Object.entries(host.isa)
    .filter(([, present]) => present)
    .map(([name]) => name.toUpperCase().replace('_', '.'))
    .join(' ');
  return `${host.cpuModel}, ${host.logicalCores} logical cores${host.physicalCores ? ` (${host.physicalCores} physical)` : ''}, ${isa || 'no SIMD flags found'}, ${(host.memoryMb / 1024).toFixed(1)} GiB, ${host.os.distribution ?? host.os.platform} ${host.os.release}, Node ${host.node}, onnxruntime-node ${host.onnxruntime.node ?? '?'}`;
}
