import t from 'tap';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CUDA_INSTALL_COMMAND,
  assessCuda,
  assessWebGpu,
  describeProviderChoice,
  gatherHostFacts,
  planProviders,
  type HostFacts,
} from '../../../src/node/execution/providers.js';
import { EdgetlError } from '../../../src/core/util/errors.js';
import { SWIFTSHADER_ICD, swiftShaderSkipReason } from '../../helpers/shared.js';

/** A fake machine: /dev nodes, Vulkan driver manifests and a loader folder under one temp root. */
async function fakeHost(
  t: { teardown(fn: () => unknown): void },
  setup: { dev?: string[]; icds?: Record<string, string>; loader?: boolean },
) {
  const root = await mkdtemp(join(tmpdir(), 'edgetl-host-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  await mkdir(join(root, 'dev', 'dri'), { recursive: true });
  for (const node of setup.dev ?? []) await writeFile(join(root, 'dev', node), '');
  const icdDir = join(root, 'share', 'vulkan', 'icd.d');
  await mkdir(icdDir, { recursive: true });
  for (const [file, library] of Object.entries(setup.icds ?? {})) {
    await writeFile(
      join(icdDir, file),
      JSON.stringify({ file_format_version: '1.0.0', ICD: { library_path: library, api_version: '1.3.0' } }),
    );
  }
  const libDir = join(root, 'lib');
  await mkdir(libDir, { recursive: true });
  if (setup.loader !== false) await writeFile(join(libDir, 'libvulkan.so.1'), '');
  const facts = gatherHostFacts({
    env: { XDG_DATA_DIRS: join(root, 'share'), XDG_CONFIG_DIRS: join(root, 'etc'), HOME: root, PATH: '' },
    platform: 'linux',
    arch: 'x64',
    devRoot: root,
    runTools: false,
    loaderSearchDirs: [libDir],
  });
  return { root, facts };
}

const LAVAPIPE = { 'lvp_icd.x86_64.json': '/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so' };
const INTEL = { 'intel_icd.x86_64.json': '/usr/lib/x86_64-linux-gnu/libvulkan_intel.so' };
const NVIDIA = { 'nvidia_icd.json': 'libGLX_nvidia.so.0' };

/** Facts with the CUDA part set as a test wants it. */
function withCuda(facts: HostFacts, cuda: { library: boolean; gpu: boolean }): HostFacts {
  return {
    ...facts,
    cuda: {
      bindingDir: '/opt/ort/bin',
      providerLibrary: '/opt/ort/bin/libonnxruntime_providers_cuda.so',
      providerLibraryPresent: cuda.library,
      sharedLibraryPresent: cuda.library,
      gpuPresent: cuda.gpu,
      gpuEvidence: cuda.gpu ? 'device /dev/nvidia0' : 'no /dev/nvidia0 (looked in /dev)',
    },
  };
}

t.test('auto never picks a software adapter: lavapipe alone means CPU, and the reason says so', async (t) => {
  const { facts } = await fakeHost(t, { icds: LAVAPIPE });
  t.equal(facts.vulkan.icds[0].kind, 'software');
  const plan = planProviders('auto', facts);
  t.same(plan.candidates, ['cpu']);
  const webgpu = plan.skipped.find((s) => s.provider === 'webgpu');
  t.match(webgpu?.reason, /only a software WebGPU adapter is available \(lavapipe/);
  t.match(webgpu?.reason, /auto never picks one/);
});

t.test('a hardware driver without its GPU device node is not a GPU', async (t) => {
  const { facts } = await fakeHost(t, { icds: { ...INTEL, ...LAVAPIPE } });
  const webgpu = assessWebGpu(facts);
  t.equal(webgpu.hardware, false);
  t.match(webgpu.reason, /drivers Intel are installed but no GPU device node/);
  t.same(planProviders('auto', facts).candidates, ['cpu']);
});

t.test('a hardware driver with a render node is picked by auto, and only hardware drivers are handed on', async (t) => {
  const { root, facts } = await fakeHost(t, { icds: { ...INTEL, ...LAVAPIPE }, dev: ['dri/renderD128'] });
  const webgpu = assessWebGpu(facts);
  t.equal(webgpu.hardware, true);
  t.equal(webgpu.adapter?.software, false);
  t.same(webgpu.hardwareManifests, [join(root, 'share', 'vulkan', 'icd.d', 'intel_icd.x86_64.json')]);
  t.same(planProviders('auto', facts).candidates, ['webgpu', 'cpu']);
});

t.test('the NVIDIA Vulkan driver counts with /dev/nvidia0', async (t) => {
  const { facts } = await fakeHost(t, { icds: NVIDIA, dev: ['nvidia0'] });
  t.equal(assessWebGpu(facts).hardware, true);
  t.equal(facts.cuda.gpuPresent, true, 'the same device node shows the GPU to CUDA');
  t.match(facts.cuda.gpuEvidence, /nvidia0/);
});

t.test('VK_ICD_FILENAMES replaces the driver search (SwiftShader only -> software)', async (t) => {
  const { root } = await fakeHost(t, { icds: INTEL, dev: ['dri/renderD128'] });
  const swiftshader = join(root, 'vk_swiftshader_icd.json');
  await writeFile(swiftshader, JSON.stringify({ ICD: { library_path: './libvk_swiftshader.so' } }));
  const facts = gatherHostFacts({
    env: { VK_ICD_FILENAMES: swiftshader, XDG_DATA_DIRS: join(root, 'share'), PATH: '' },
    platform: 'linux',
    devRoot: root,
    runTools: false,
    loaderSearchDirs: [join(root, 'lib')],
  });
  t.equal(facts.vulkan.overriddenBy, 'VK_ICD_FILENAMES');
  t.same(
    facts.vulkan.icds.map((i) => i.name),
    ['SwiftShader'],
  );
  t.equal(
    facts.vulkan.icds[0].library,
    join(root, 'libvk_swiftshader.so'),
    'relative library path resolved against the manifest',
  );
  const webgpu = assessWebGpu(facts);
  t.equal(webgpu.hardware, false);
  t.equal(webgpu.adapter?.software, true);
  t.equal(webgpu.tryable, true, 'an explicit --ep webgpu still runs on it');
  t.same(planProviders('webgpu', facts).candidates, ['webgpu', 'cpu']);
});

t.test('no Vulkan loader: WebGPU is skipped, strict fails, both say what to install', async (t) => {
  const { facts } = await fakeHost(t, { icds: INTEL, dev: ['dri/renderD128'], loader: false });
  t.equal(facts.vulkan.loader, undefined);
  const plan = planProviders('webgpu', facts);
  t.same(plan.candidates, ['cpu']);
  t.match(plan.skipped[0], {
    provider: 'webgpu',
    reason: /no Vulkan loader \(libvulkan\.so\.1\).*apt-get install libvulkan1/,
  });
  t.throws(() => planProviders('webgpu', facts, true), {
    code: 'ep-unavailable',
    message: /`ep: 'webgpu'` can't run here \(`strictEp`\): no Vulkan loader/,
  });
});

t.test('CUDA: auto wants the provider library AND a GPU', async (t) => {
  const { facts: base } = await fakeHost(t, { icds: LAVAPIPE });
  t.same(planProviders('auto', withCuda(base, { library: true, gpu: true })).candidates, ['cuda', 'cpu']);
  const noGpu = planProviders('auto', withCuda(base, { library: true, gpu: false }));
  t.same(noGpu.candidates, ['cpu']);
  t.match(noGpu.skipped.find((s) => s.provider === 'cuda')?.reason, /no NVIDIA GPU found/);
  const noLibrary = planProviders('auto', withCuda(base, { library: false, gpu: true }));
  t.same(noLibrary.candidates, ['cpu']);
  t.match(noLibrary.skipped.find((s) => s.provider === 'cuda')?.reason, /CUDA provider library not found/);
});

t.test('CUDA missing: the message tells how to install it; strict throws it', async (t) => {
  const { facts: base } = await fakeHost(t, {});
  const facts = withCuda(base, { library: false, gpu: true });
  const reason = assessCuda(facts).reason;
  t.ok(reason.includes(CUDA_INSTALL_COMMAND), reason);
  t.match(reason, /libonnxruntime_providers_cuda\.so/);
  t.match(reason, /fetches the CUDA 13 provider from the npm registry; it needs the CUDA 13 and cuDNN 9 libraries/);
  const plan = planProviders('cuda', facts);
  t.same(plan.candidates, ['cpu']);
  t.equal(plan.skipped[0].reason, reason);
  const strict = (() => {
    try {
      planProviders('cuda', facts, true);
    } catch (error) {
      return error;
    }
  })();
  t.ok(strict instanceof EdgetlError && strict.code === 'ep-unavailable', 'strict throws ep-unavailable');
  t.ok(strict instanceof Error && strict.message.includes(CUDA_INSTALL_COMMAND), 'with the install command');
  // Explicitly asked for, with the library present but no GPU seen: still tried (onnxruntime gets the last word).
  t.same(planProviders('cuda', withCuda(base, { library: true, gpu: false })).candidates, ['cuda', 'cpu']);
  // Jetson-style arm64: no npm CUDA build exists, and the message says that instead of a command that can't work.
  t.match(assessCuda({ ...facts, arch: 'arm64' }).reason, /no CUDA build for linux\/arm64/);
});

t.test('the install command is a real edgetl verb that reaches only the npm registry', async (t) => {
  const { commands } = await import('../../../src/node/cli/commands.js');
  t.equal(CUDA_INSTALL_COMMAND, 'edgetl setup cuda');
  const setup = commands.find((c) => c.name === 'setup');
  t.ok(setup, 'edgetl setup exists');
  t.match(setup?.help, /npm/);
});

t.test('wasm is a browser provider: skipped in Node with the reason, strict throws', async (t) => {
  const { facts } = await fakeHost(t, {});
  t.match(planProviders('wasm', facts).skipped[0].reason, /browser provider/);
  t.throws(() => planProviders('wasm', facts, true), { code: 'ep-unavailable' });
  t.throws(() => planProviders('tpu' as never, facts), {
    code: 'bad-input',
    message: /unknown execution provider 'tpu'/,
  });
});

t.test('other platforms: Metal counts as hardware, Windows adapters are not guessed', async (t) => {
  const { facts } = await fakeHost(t, {});
  t.equal(assessWebGpu({ ...facts, platform: 'darwin' }).hardware, true);
  const windows = assessWebGpu({ ...facts, platform: 'win32' });
  t.equal(windows.hardware, false);
  t.equal(windows.tryable, true);
  t.match(windows.reason, /can't verify/);
  t.match(assessWebGpu({ ...facts, supportedBackends: [{ name: 'cpu', bundled: true }] }).reason, /no WebGPU provider/);
});

t.test('describeProviderChoice says what ran and why the rest did not', async (t) => {
  t.equal(
    describeProviderChoice({ used: 'cpu', fallbacks: [{ provider: 'webgpu', reason: 'only a software adapter' }] }),
    'cpu (webgpu not used: only a software adapter)',
  );
  t.match(
    describeProviderChoice({ used: 'webgpu', fallbacks: [], adapter: { device: 'SwiftShader', software: true } }),
    /^webgpu on SwiftShader \(software adapter/,
  );
});

const swiftShaderOnly = gatherHostFacts({
  env: { ...process.env, VK_ICD_FILENAMES: SWIFTSHADER_ICD, VK_DRIVER_FILES: '' },
});
// Without a Vulkan loader (libvulkan1) the reason is the missing loader, not the software driver.
t.test(
  'this machine: with SwiftShader as the only driver, auto picks CPU and says why',
  { skip: swiftShaderSkipReason(swiftShaderOnly.vulkan.loader) },
  async (t) => {
    const facts = swiftShaderOnly;
    const plan = planProviders('auto', facts);
    t.notOk(plan.candidates.includes('webgpu'));
    t.match(plan.skipped.find((s) => s.provider === 'webgpu')?.reason, /SwiftShader/);
  },
);
