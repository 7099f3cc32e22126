import t from 'tap';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readElfDynamic } from '../../../src/node/execution/elf-needed.js';
import {
  assessCuda,
  gatherHostFacts,
  onnxruntimeNodeDir,
  planProviders,
  type HostFacts,
} from '../../../src/node/execution/providers.js';
import { classifyCudaLoadError } from '../../../src/node/execution/cuda-load-check.js';
import { checkLibraries, pythonNvidiaLibDirs } from '../../../src/node/execution/cuda-libraries.js';
import { CUDA_MANIFEST_FILE } from '../../../src/node/execution/cuda-package.js';
import { CUDA13_PROVIDER_NEEDS, fakeSharedObject } from '../../helpers/elf.js';

const CUDA13_LIBS = [
  'libcudart.so.13',
  'libcublas.so.13',
  'libcublasLt.so.13',
  'libcurand.so.10',
  'libcuda.so.1',
  'libcudnn.so.9',
];

interface FakeMachine {
  /** Libraries in a folder on LD_LIBRARY_PATH. */
  ldPath?: string[];
  /** Libraries listed by `ldconfig -p` (in a folder of their own). */
  cached?: string[];
  /** Libraries in the loader's default folder. */
  system?: string[];
  /** Libraries in a CUDA folder the loader doesn't search. */
  offPath?: string[];
  dev?: string[];
  /** /proc/driver/nvidia: driver version and one GPU's model. */
  proc?: { driver?: string; gpuModel?: string };
  provider?: 'elf' | 'dummy' | 'none';
  manifest?: Record<string, unknown>;
  coreVersion?: string;
}

/** A whole fake host: onnxruntime-node with or without the provider, library folders, /dev and /proc. */
async function fakeMachine(
  t: { teardown(fn: () => unknown): void },
  m: FakeMachine,
): Promise<{ root: string; facts: HostFacts }> {
  const root = await mkdtemp(join(tmpdir(), 'edgetl-cuda-host-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const ort = join(root, 'ort');
  const binding = join(ort, 'bin', 'napi-v6', 'linux', 'x64');
  await mkdir(binding, { recursive: true });
  await writeFile(join(ort, 'package.json'), JSON.stringify({ version: m.coreVersion ?? '1.30.0' }));
  if ((m.provider ?? 'elf') !== 'none') {
    const provider =
      m.provider === 'dummy' ? Buffer.from('not an ELF') : fakeSharedObject({ needed: CUDA13_PROVIDER_NEEDS });
    await writeFile(join(binding, 'libonnxruntime_providers_cuda.so'), provider);
    await writeFile(join(binding, 'libonnxruntime_providers_shared.so'), fakeSharedObject({}));
  }
  if (m.manifest) await writeFile(join(binding, CUDA_MANIFEST_FILE), JSON.stringify(m.manifest));
  const folder = async (name: string, libs: string[] = []) => {
    const dir = join(root, name);
    await mkdir(dir, { recursive: true });
    for (const lib of libs) await writeFile(join(dir, lib), '');
    return dir;
  };
  const ldDir = await folder('ld', m.ldPath);
  const cacheDir = await folder('cached', m.cached);
  const systemDir = await folder('system', m.system);
  const offDir = await folder('cuda-13.0/lib64', m.offPath);
  await mkdir(join(root, 'dev'), { recursive: true });
  for (const node of m.dev ?? []) await writeFile(join(root, 'dev', node), '');
  if (m.proc) {
    const proc = join(root, 'proc', 'driver', 'nvidia');
    await mkdir(join(proc, 'gpus', '0000:01:00.0'), { recursive: true });
    if (m.proc.driver)
      await writeFile(
        join(proc, 'version'),
        `NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  ${m.proc.driver}  Release Build\nGCC version: gcc 12\n`,
      );
    if (m.proc.gpuModel)
      await writeFile(join(proc, 'gpus', '0000:01:00.0', 'information'), `Model: \t\t ${m.proc.gpuModel}\nIRQ: 16\n`);
  }
  const ldconfig = [
    `${(m.cached ?? []).length} libs found in cache \`/etc/ld.so.cache'`,
    ...(m.cached ?? []).map((lib) => `\t${lib} (libc6,x86-64) => ${join(cacheDir, lib)}`),
    // Another architecture's copy never counts for an x64 process.
    `\tlibcudnn.so.9 (libc6,AArch64) => /usr/lib/aarch64-linux-gnu/libcudnn.so.9`,
  ].join('\n');
  const facts = gatherHostFacts({
    env: { PATH: '', LD_LIBRARY_PATH: `${join(root, 'nothing-here')}:${ldDir}` },
    platform: 'linux',
    arch: 'x64',
    devRoot: root,
    runTools: false,
    onnxruntimeDir: ort,
    librarySearch: { ldconfigCache: ldconfig, defaultDirs: [systemDir], otherDirs: [offDir] },
  });
  // No Vulkan driver on these hosts: WebGPU stays out of the way of the CUDA decisions.
  facts.vulkan = { loader: undefined, icds: [], renderNodes: [] };
  return { root, facts };
}

const GPU = { dev: ['nvidia0', 'nvidiactl'], proc: { driver: '580.65.06', gpuModel: 'NVIDIA H200' } };

t.test('readElfDynamic reads DT_NEEDED and DT_SONAME; anything else is undefined', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'edgetl-elf-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  await writeFile(
    join(root, 'a.so'),
    fakeSharedObject({ needed: ['libcudart.so.13', 'libc.so.6'], soname: 'liba.so.1' }),
  );
  t.same(readElfDynamic(join(root, 'a.so')), { needed: ['libcudart.so.13', 'libc.so.6'], soname: 'liba.so.1' });
  await writeFile(join(root, 'text.so'), 'not an ELF');
  t.equal(readElfDynamic(join(root, 'text.so')), undefined);
  t.equal(readElfDynamic(join(root, 'missing.so')), undefined);
  await writeFile(join(root, 'short.so'), Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1]));
  t.equal(readElfDynamic(join(root, 'short.so')), undefined, 'a truncated header is not a crash');
  // And a real binary built by someone else: onnxruntime-node's binding links its core.
  const ort = onnxruntimeNodeDir();
  const binding = ort && join(ort, 'bin', 'napi-v6', 'linux', 'x64', 'onnxruntime_binding.node');
  if (binding && existsSync(binding))
    t.ok(
      readElfDynamic(binding)?.needed.includes('libonnxruntime.so.1'),
      'real ELF: onnxruntime_binding.node needs libonnxruntime.so.1',
    );
});

t.test('everything there (libraries found three ways, GPU, driver 580): auto picks CUDA', async (t) => {
  const { facts } = await fakeMachine(t, {
    ...GPU,
    ldPath: ['libcudart.so.13', 'libcublas.so.13'],
    cached: ['libcublasLt.so.13', 'libcurand.so.10', 'libcudnn.so.9'],
    system: ['libcuda.so.1'],
  });
  t.same(facts.cuda.providerNeeds, [
    'libcublasLt.so.13',
    'libcublas.so.13',
    'libcurand.so.10',
    'libcudart.so.13',
    'libcuda.so.1',
  ]);
  t.equal(facts.cuda.cudaMajor, 13);
  t.equal(facts.cuda.driverVersion, '580.65.06');
  t.match(facts.cuda.gpuEvidence, /nvidia0.*NVIDIA H200/);
  const via = Object.fromEntries((facts.cuda.libraries ?? []).map((l) => [l.soname, l.via]));
  t.same(via, {
    'libcublasLt.so.13': 'ldconfig cache',
    'libcublas.so.13': 'LD_LIBRARY_PATH',
    'libcurand.so.10': 'ldconfig cache',
    'libcudart.so.13': 'LD_LIBRARY_PATH',
    'libcuda.so.1': 'default folder',
    'libcudnn.so.9': 'ldconfig cache',
  });
  t.equal(
    facts.cuda.libraries?.find((l) => l.soname === 'libcudnn.so.9')?.needed,
    'runtime',
    'cuDNN is dlopened, not linked',
  );
  const cuda = assessCuda(facts);
  t.same(cuda.missing, []);
  t.equal(cuda.ready, true);
  t.same(planProviders('auto', facts).candidates, ['cuda', 'cpu']);
});

t.test(
  'cuDNN missing: the session would open and the first convolution fail, so CUDA is neither picked nor tried',
  async (t) => {
    const { facts } = await fakeMachine(t, { ...GPU, system: CUDA13_LIBS.filter((l) => l !== 'libcudnn.so.9') });
    const cuda = assessCuda(facts);
    t.equal(cuda.ready, false);
    t.equal(cuda.tryable, false);
    t.same(
      cuda.missing.map((m) => [m.kind, m.name]),
      [['library', 'libcudnn.so.9']],
      'the AArch64 cache entry did not count',
    );
    t.match(
      cuda.reason,
      /libcudnn\.so\.9 \(cuDNN 9; onnxruntime loads it at the first convolution\).*Fix: apt-get install libcudnn9-cuda-13/,
    );
    const auto = planProviders('auto', facts);
    t.same(auto.candidates, ['cpu']);
    t.equal(auto.skipped.find((s) => s.provider === 'cuda')?.reason, cuda.reason);
    t.same(planProviders('cuda', facts).candidates, ['cpu']);
    t.throws(() => planProviders('cuda', facts, true), {
      code: 'ep-unavailable',
      message: /`ep: 'cuda'` can't run here \(`strictEp`\): .*libcudnn\.so\.9/,
    });
  },
);

t.test('every CUDA library missing: each named with its version, one combined command', async (t) => {
  const { facts } = await fakeMachine(t, { ...GPU });
  const cuda = assessCuda(facts);
  t.same(cuda.missing.map((m) => m.name).sort(), [...CUDA13_LIBS].sort());
  t.match(
    cuda.missing.find((m) => m.name === 'libcudart.so.13'),
    { detail: 'libcudart.so.13 (CUDA 13 runtime)', fix: 'apt-get install cuda-cudart-13-0' },
  );
  t.match(
    cuda.missing.find((m) => m.name === 'libcublasLt.so.13'),
    { fix: 'apt-get install libcublas-13-0' },
  );
  t.match(
    cuda.missing.find((m) => m.name === 'libcurand.so.10'),
    { detail: /cuRAND, CUDA 13/, fix: 'apt-get install libcurand-13-0' },
  );
  t.match(
    cuda.missing.find((m) => m.name === 'libcuda.so.1'),
    { detail: /NVIDIA driver/, fix: /580 or newer.*--gpus all/ },
  );
  const fix = /Fix: apt-get install ([^(]+) \(NVIDIA's CUDA apt repository\); install the NVIDIA driver/.exec(
    cuda.reason,
  );
  t.ok(fix, cuda.reason);
  t.same(
    fix?.[1].trim().split(' ').sort(),
    ['cuda-cudart-13-0', 'libcublas-13-0', 'libcudnn9-cuda-13', 'libcurand-13-0'],
    'one apt-get line, each package once',
  );
});

t.test('only CUDA 12 libraries: named as the wrong version', async (t) => {
  const { facts } = await fakeMachine(t, {
    ...GPU,
    system: [
      'libcudart.so.12',
      'libcublas.so.12',
      'libcublasLt.so.12',
      'libcurand.so.10',
      'libcuda.so.1',
      'libcudnn.so.9',
    ],
  });
  const cuda = assessCuda(facts);
  t.same(
    cuda.missing.map((m) => m.name),
    ['libcublasLt.so.13', 'libcublas.so.13', 'libcudart.so.13'],
  );
  t.match(
    cuda.missing.find((m) => m.name === 'libcudart.so.13')?.detail,
    /only libcudart\.so\.12 is installed, another version, which this provider can't use/,
  );
});

t.test('a library off the loader path: where it is and the LD_LIBRARY_PATH line that fixes it', async (t) => {
  const { root, facts } = await fakeMachine(t, {
    ...GPU,
    system: CUDA13_LIBS.filter((l) => l !== 'libcublasLt.so.13'),
    offPath: ['libcublasLt.so.13'],
  });
  const piece = assessCuda(facts).missing.find((m) => m.name === 'libcublasLt.so.13');
  const dir = join(root, 'cuda-13.0', 'lib64');
  t.match(piece?.detail, `it is at ${join(dir, 'libcublasLt.so.13')}, a folder the loader doesn't search`);
  t.match(piece?.fix, `export LD_LIBRARY_PATH=${dir}`);
});

t.test(
  "CUDA libraries from Python wheels (a CUDA PyTorch's nvidia/*/lib) are found and named with the LD_LIBRARY_PATH line",
  async (t) => {
    const root = await mkdtemp(join(tmpdir(), 'edgetl-venv-'));
    t.teardown(() => rm(root, { recursive: true, force: true }));
    const site = join(root, 'venv', 'lib', 'python3.12', 'site-packages', 'nvidia');
    for (const [pkg, lib] of [
      ['cu13', 'libcudart.so.13'],
      ['cudnn', 'libcudnn.so.9'],
    ]) {
      await mkdir(join(site, pkg, 'lib'), { recursive: true });
      await writeFile(join(site, pkg, 'lib', lib), '');
    }
    await mkdir(join(root, 'venv', 'lib', 'python3.12', 'site-packages', 'torch'), { recursive: true });
    const dirs = pythonNvidiaLibDirs([join(root, 'venv'), undefined, join(root, 'no-such-prefix')]);
    t.same(dirs.sort(), [join(site, 'cu13', 'lib'), join(site, 'cudnn', 'lib')]);
    const checks = checkLibraries(
      [
        { soname: 'libcudart.so.13', needed: 'link' },
        { soname: 'libcudnn.so.9', needed: 'runtime' },
      ],
      13,
      { env: {}, arch: 'x64', defaultDirs: [], otherDirs: dirs },
    );
    t.same(
      checks.map((c) => c.offPath),
      [join(site, 'cu13', 'lib', 'libcudart.so.13'), join(site, 'cudnn', 'lib', 'libcudnn.so.9')],
    );
    t.match(checks[0].fix, `export LD_LIBRARY_PATH=${join(site, 'cu13', 'lib')}`);
  },
);

t.test(
  'no GPU: auto skips CUDA saying so, an explicit --ep cuda still tries (onnxruntime has the last word)',
  async (t) => {
    const { facts } = await fakeMachine(t, { system: CUDA13_LIBS });
    t.equal(facts.cuda.gpuPresent, false);
    t.match(facts.cuda.gpuEvidence, /no \/dev\/nvidia0.*no .*proc\/driver\/nvidia\/gpus/);
    const cuda = assessCuda(facts);
    t.same(
      cuda.missing.map((m) => m.kind),
      ['gpu'],
    );
    t.equal(cuda.tryable, true);
    t.same(planProviders('auto', facts).candidates, ['cpu']);
    t.match(planProviders('auto', facts).skipped[0], { provider: 'cuda', reason: /no NVIDIA GPU found/ });
    t.same(planProviders('cuda', facts).candidates, ['cuda', 'cpu']);
  },
);

t.test(
  'a GPU seen in /proc/driver/nvidia alone counts; a driver too old for CUDA 13 is named with the version it needs',
  async (t) => {
    const { facts } = await fakeMachine(t, {
      proc: { driver: '550.54.15', gpuModel: 'NVIDIA T4' },
      system: CUDA13_LIBS,
    });
    t.equal(facts.cuda.gpuPresent, true);
    t.match(facts.cuda.gpuEvidence, /gpus\/0000:01:00\.0 \(NVIDIA T4\)/);
    const cuda = assessCuda(facts);
    t.same(
      cuda.missing.map((m) => [m.kind, m.name]),
      [['driver', 'NVIDIA driver 550.54.15']],
    );
    t.match(cuda.reason, /the NVIDIA driver is 550\.54\.15, and CUDA 13 needs 580 or newer/);
    t.equal(cuda.ready, false);
    t.equal(cuda.tryable, true, 'tried when asked: the driver version read may be wrong, onnxruntime will tell');
  },
);

t.test('no provider: install command first, and the GPU named too when absent', async (t) => {
  const { facts } = await fakeMachine(t, { provider: 'none', system: CUDA13_LIBS });
  const cuda = assessCuda(facts);
  t.same(
    cuda.missing.map((m) => m.kind),
    ['provider', 'gpu'],
  );
  t.match(cuda.missing[0], {
    fix: 'edgetl setup cuda',
    detail: /CUDA provider library not found .*libonnxruntime_providers_cuda\.so.*edgetl setup cuda/,
  });
  t.same(facts.cuda.libraries, [], 'no library check without a provider');
});

t.test('a provider whose header is unreadable is taken to need what the package provider needs', async (t) => {
  const { facts } = await fakeMachine(t, { ...GPU, provider: 'dummy', system: ['libcudart.so.13'] });
  t.equal(facts.cuda.providerNeeds, undefined);
  t.same(
    (facts.cuda.libraries ?? []).map((l) => l.soname),
    ['libcublasLt.so.13', 'libcublas.so.13', 'libcurand.so.10', 'libcudart.so.13', 'libcuda.so.1', 'libcudnn.so.9'],
  );
});

t.test('an install record whose provider does not pair with the core blocks CUDA with the fix', async (t) => {
  const manifest = {
    format: 'edgetl-cuda-install/1',
    package: 'com.github.asus4.onnxruntime.linux-x64-gpu',
    packageVersion: '0.4.9',
    onnxruntimeVersion: '1.29.0',
    coreVersion: '1.29.0',
    cudaMajor: 13,
    cudnnMajor: 9,
    compatibility: 'exact',
    files: [],
    installedAt: '2026-12-01T00:00:00Z',
    source: 'x',
  };
  const { facts } = await fakeMachine(t, { ...GPU, system: CUDA13_LIBS, manifest, coreVersion: '1.31.0' });
  const cuda = assessCuda(facts);
  t.equal(cuda.compatibility?.ok, false);
  t.equal(cuda.tryable, false);
  t.match(cuda.reason, /built from onnxruntime 1\.29\.0 but onnxruntime-node here is 1\.31\.0.*Fix: edgetl setup cuda/);
  const { facts: paired } = await fakeMachine(t, { ...GPU, system: CUDA13_LIBS, manifest, coreVersion: '1.30.0' });
  t.equal(assessCuda(paired).ready, true, 'the checked 1.29.0-in-1.30 pairing is ready');
  t.equal(assessCuda(paired).compatibility?.kind, 'checked');
});

t.test("onnxruntime's load errors are sorted: library missing, no usable GPU, anything else", async (t) => {
  t.equal(
    classifyCudaLoadError(
      'OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library | libcublasLt.so.13: cannot open shared object file: No such file or directory',
    ),
    'load-failed',
  );
  t.equal(
    classifyCudaLoadError(
      'CUDA failure 100: no CUDA-capable device is detected ; GPU=-1 ; expr=cudaSetDevice(info_.device_id);',
    ),
    'no-gpu',
  );
  t.equal(
    classifyCudaLoadError('CUDA failure 35: CUDA driver version is insufficient for CUDA runtime version'),
    'no-gpu',
  );
  t.equal(classifyCudaLoadError('some other failure'), 'failed');
});
