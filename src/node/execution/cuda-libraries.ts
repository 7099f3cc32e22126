/**
 * Will the dynamic loader find the CUDA and cuDNN libraries the CUDA provider asks for? Answered the way glibc's
 * loader searches for a dlopen'ed library's dependencies (LD_LIBRARY_PATH, the ldconfig cache, the default folders),
 * without loading anything. Each library that can't be found is named with its version and the command that fixes it.
 */
import { existsSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { readElfDynamic } from './elf-needed.js';

export interface CudaLibraryCheck {
  /** e.g. libcudart.so.13 */
  soname: string;
  /** What it is, for people: "CUDA 13 runtime (cudart)". */
  purpose: string;
  /** link: a DT_NEEDED of the provider (the provider won't load without it); runtime: dlopen'ed on first use. */
  needed: 'link' | 'runtime';
  /** Where the loader will take it from, when found. */
  path?: string;
  via?: 'LD_LIBRARY_PATH' | 'ldconfig cache' | 'default folder';
  /** Found, but in a folder the loader doesn't search (e.g. /usr/local/cuda-13.0/lib64). */
  offPath?: string;
  /** Other versions of the same library that are there (libcudart.so.12 when .so.13 is wanted). */
  otherVersions?: string[];
  /** For a missing library: the command (or step) that fixes it. */
  fix?: string;
}

/**
 * The CUDA-stack libraries (lib(cu|nv)*: not glibc, libstdc++ and friends) a provider library links against, and the
 * CUDA major release that means (libcudart.so.N). undefined when its ELF header can't be read.
 */
export function providerCudaNeeds(providerLibrary: string): { needs: string[]; cudaMajor?: number } | undefined {
  const elf = readElfDynamic(providerLibrary);
  if (!elf) return undefined;
  const needs = elf.needed.filter((n) => /^lib(cu|nv)/.test(n));
  const cudart = needs.map((n) => /^libcudart\.so\.(\d+)$/.exec(n)?.[1]).find(Boolean);
  return { needs, ...(cudart ? { cudaMajor: Number(cudart) } : {}) };
}

export interface LibrarySearch {
  env: NodeJS.ProcessEnv;
  arch: string;
  /** `ldconfig -p` output; undefined when ldconfig couldn't be run. */
  ldconfigCache?: string;
  /** The loader's default folders (glibc: /lib, /usr/lib and their 64-bit or multiarch twins). */
  defaultDirs: string[];
  /** Folders the loader doesn't search where CUDA is often installed, looked at only to say "found but not on the path". */
  otherDirs: string[];
}

/** Default folders as glibc's loader has them, plus the usual places CUDA, cuDNN and WSL's driver land. */
export function defaultLibrarySearch(env: NodeJS.ProcessEnv, arch: string, runTools: boolean): LibrarySearch {
  const multiarch = arch === 'arm64' ? 'aarch64-linux-gnu' : 'x86_64-linux-gnu';
  const target = arch === 'arm64' ? 'sbsa-linux' : 'x86_64-linux';
  let ldconfigCache: string | undefined;
  if (runTools) {
    for (const tool of ['ldconfig', '/sbin/ldconfig', '/usr/sbin/ldconfig']) {
      const run = spawnSync(tool, ['-p'], { encoding: 'utf8', timeout: 5000 });
      if (run.status === 0 && run.stdout) {
        ldconfigCache = run.stdout;
        break;
      }
    }
  }
  const cudaHomes = [
    '/usr/local/cuda',
    ...listDir('/usr/local')
      .filter((n) => /^cuda-\d/.test(n))
      .map((n) => join('/usr/local', n)),
  ];
  const home = env.HOME ?? '';
  return {
    env,
    arch,
    ldconfigCache,
    defaultDirs: [`/lib/${multiarch}`, `/usr/lib/${multiarch}`, '/lib64', '/usr/lib64', '/lib', '/usr/lib'],
    otherDirs: [
      ...cudaHomes.flatMap((home) => [join(home, 'lib64'), join(home, 'lib'), join(home, 'targets', target, 'lib')]),
      '/usr/lib/wsl/lib',
      '/opt/nvidia/lib64',
      ...pythonNvidiaLibDirs([env.VIRTUAL_ENV, env.CONDA_PREFIX, '/usr/local', '/usr', home && join(home, '.local')]),
    ],
  };
}

/**
 * CUDA libraries that came with Python wheels (nvidia-cuda-runtime, nvidia-cublas, nvidia-cudnn-cu13, ... as a
 * CUDA PyTorch installs them): <prefix>/lib/python3.*\/{site,dist}-packages/nvidia/*\/lib. The loader never looks
 * there; finding them lets the fix be an LD_LIBRARY_PATH line instead of a second CUDA install.
 */
export function pythonNvidiaLibDirs(prefixes: (string | undefined)[]): string[] {
  const dirs: string[] = [];
  for (const prefix of new Set(prefixes.filter((p): p is string => Boolean(p)))) {
    const lib = join(prefix, 'lib');
    const pythons = listDir(lib).filter((n) => /^python3(\.\d+)?$/.test(n));
    for (const python of pythons) {
      for (const packages of ['site-packages', 'dist-packages']) {
        const nvidia = join(lib, python, packages, 'nvidia');
        for (const name of listDir(nvidia)) {
          const dir = join(nvidia, name, 'lib');
          if (existsSync(dir)) dirs.push(dir);
        }
      }
    }
  }
  return dirs;
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** `ldconfig -p` lines for this architecture: soname -> path. */
function parseLdconfig(text: string, arch: string): Map<string, string> {
  const wanted = arch === 'arm64' ? /AArch64/ : arch === 'x64' ? /x86-64/ : /./;
  const map = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^\s*(\S+)\s+\(([^)]*)\)\s+=>\s+(\S+)/.exec(line);
    if (!match || !wanted.test(match[2])) continue;
    if (!map.has(match[1])) map.set(match[1], match[3]);
  }
  return map;
}

/** "libcudart.so.13" -> "libcudart.so." ; other versions match that prefix and a number. */
function sonameStem(soname: string): string {
  return soname.replace(/\.so\..*$/, '.so.');
}

/** What a CUDA-stack library is, and how to get it (Debian/Ubuntu with NVIDIA's CUDA apt repository). */
export function describeCudaLibrary(soname: string, cudaMajor: number): { purpose: string; fix: string } {
  const cuda = `${cudaMajor}-0`;
  const base = soname.replace(/\.so(\..*)?$/, '');
  const major = /\.so\.(\d+)/.exec(soname)?.[1];
  switch (base) {
    case 'libcudart':
      return { purpose: `CUDA ${major} runtime`, fix: `apt-get install cuda-cudart-${cuda}` };
    case 'libcublas':
      return { purpose: `cuBLAS, CUDA ${cudaMajor}`, fix: `apt-get install libcublas-${cuda}` };
    case 'libcublasLt':
      return { purpose: `cuBLASLt, CUDA ${cudaMajor}`, fix: `apt-get install libcublas-${cuda}` };
    case 'libcurand':
      return { purpose: `cuRAND, CUDA ${cudaMajor}`, fix: `apt-get install libcurand-${cuda}` };
    case 'libcufft':
      return { purpose: `cuFFT, CUDA ${cudaMajor}`, fix: `apt-get install libcufft-${cuda}` };
    case 'libcudnn':
      return { purpose: `cuDNN ${major}`, fix: `apt-get install libcudnn${major}-cuda-${cudaMajor}` };
    case 'libcuda':
      return {
        purpose: 'the NVIDIA driver',
        fix:
          `install the NVIDIA driver (${minimumDriverFor(cudaMajor)} or newer for CUDA ${cudaMajor}); in a container, ` +
          'start it with the NVIDIA Container Toolkit (docker run --gpus all)',
      };
    case 'libnvinfer':
    case 'libnvonnxparser':
      return { purpose: `TensorRT ${major}`, fix: `apt-get install libnvinfer${major} libnvonnxparsers${major}` };
    default:
      return { purpose: soname, fix: `install the library that provides ${soname}` };
  }
}

/** The oldest Linux driver branch each CUDA major release runs on (NVIDIA's CUDA release notes, table 3). */
export function minimumDriverFor(cudaMajor: number): number {
  return cudaMajor >= 13 ? 580 : cudaMajor === 12 ? 525 : 450;
}

/** Find each library where the loader will look; say where else it is and how to fix it when it isn't. */
export function checkLibraries(
  libraries: { soname: string; needed: 'link' | 'runtime' }[],
  cudaMajor: number,
  search: LibrarySearch,
): CudaLibraryCheck[] {
  const cache = search.ldconfigCache ? parseLdconfig(search.ldconfigCache, search.arch) : new Map<string, string>();
  const ldPath = (search.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean);
  return libraries.map(({ soname, needed }) => {
    const { purpose, fix } = describeCudaLibrary(soname, cudaMajor);
    const check: CudaLibraryCheck = { soname, purpose, needed };
    const inLdPath = ldPath.find((dir) => existsSync(join(dir, soname)));
    if (inLdPath) return { ...check, path: join(inLdPath, soname), via: 'LD_LIBRARY_PATH' };
    const cached = cache.get(soname);
    if (cached) return { ...check, path: cached, via: 'ldconfig cache' };
    const inDefault = search.defaultDirs.find((dir) => existsSync(join(dir, soname)));
    if (inDefault) return { ...check, path: join(inDefault, soname), via: 'default folder' };

    const stem = sonameStem(soname);
    const others = new Set<string>();
    for (const name of cache.keys())
      if (name.startsWith(stem) && /^\d+$/.test(name.slice(stem.length)) && name !== soname) others.add(name);
    for (const dir of [...ldPath, ...search.defaultDirs, ...search.otherDirs]) {
      for (const name of listDir(dir))
        if (name.startsWith(stem) && /^\d+$/.test(name.slice(stem.length)) && name !== soname) others.add(name);
    }
    const offDir = search.otherDirs.find((dir) => existsSync(join(dir, soname)));
    if (offDir) {
      return {
        ...check,
        offPath: join(offDir, soname),
        fix: `export LD_LIBRARY_PATH=${offDir}\${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}  (or: echo ${offDir} > /etc/ld.so.conf.d/cuda.conf && ldconfig)`,
      };
    }
    return { ...check, ...(others.size > 0 ? { otherVersions: [...others].sort() } : {}), fix };
  });
}

/** "libcudart.so.13 (CUDA 13 runtime)", plus where it is instead: only another version, or a folder off the path. */
export function describeMissingLibrary(check: CudaLibraryCheck): string {
  const when = check.needed === 'runtime' ? '; onnxruntime loads it at the first convolution' : '';
  const instead = check.offPath
    ? `: it is at ${check.offPath}, a folder the loader doesn't search`
    : check.otherVersions
      ? `: only ${check.otherVersions.join(', ')} is installed, another version, which this provider can't use`
      : '';
  return `${check.soname} (${check.purpose}${when})${instead}`;
}
