import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createSession,
  describePlacement,
  mostlyOnCpu,
  parseSessionLog,
  probeSession,
  sessionOptionsFor,
} from '../../../src/node/execution/session.js';
import { CUDA_INSTALL_COMMAND, gatherHostFacts } from '../../../src/node/execution/providers.js';
import { modelBytes, node, tensor, valueInfo } from '../../helpers/onnx-graph.js';

/** X [N,3,2,2] -> doubled = 2X, plus_one = 2X + 1. */
const tinyModel = modelBytes({
  nodes: [node('Mul', ['X', 'two'], ['doubled']), node('Add', ['doubled', 'one'], ['plus_one'])],
  inputs: [valueInfo('X', ['N', 3, 2, 2])],
  outputs: [valueInfo('doubled', ['N', 3, 2, 2]), valueInfo('plus_one', ['N', 3, 2, 2])],
  initializers: [tensor('two', [1], [2]), tensor('one', [1], [1])],
});
const input = Float32Array.from({ length: 2 * 12 }, (_, i) => i - 5.5);

async function modelFile(t: { teardown(fn: () => unknown): void }, bytes: Uint8Array = tinyModel): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'edgetl-session-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'tiny.onnx');
  await writeFile(path, bytes);
  return path;
}

t.test('a CPU session exposes names and dims from the model and computes outputs', async (t) => {
  const path = await modelFile(t);
  const session = await createSession(path, { ep: 'cpu' });
  t.teardown(() => session.close());
  t.equal(session.inputName, 'X');
  t.same(session.outputNames, ['doubled', 'plus_one']);
  t.same(session.inputDims, ['N', 3, 2, 2]);
  t.match(session.provider, { requested: 'cpu', used: 'cpu', fallbacks: [] });
  const first = await session.run(input, [2, 3, 2, 2]);
  t.same(first.dims, [2, 3, 2, 2]);
  t.same(
    Array.from(first.data),
    Array.from(input, (v) => 2 * v),
    'default output is the first one',
  );
  const named = await session.run(input.subarray(0, 12), [1, 3, 2, 2], 'plus_one');
  t.same(
    Array.from(named.data),
    Array.from(input.subarray(0, 12), (v) => 2 * v + 1),
  );
});

t.test('a model given as bytes works the same', async (t) => {
  const session = await createSession(tinyModel, { ep: 'cpu' });
  t.teardown(() => session.close());
  t.same(Array.from((await session.run(input.subarray(0, 12), [1, 3, 2, 2], 'plus_one')).data).slice(0, 2), [-10, -8]);
});

t.test('misuse is refused clearly', async (t) => {
  const session = await createSession(tinyModel, { ep: 'cpu' });
  await t.rejects(session.run(input, [1, 3, 2, 2]), {
    code: 'bad-input',
    message: /24 values but dims \[1, 3, 2, 2\] need 12/,
  });
  await t.rejects(session.run(input, [2, 3, 2, 2], 'logits'), {
    code: 'bad-input',
    message: /no output 'logits' \(outputs: doubled, plus_one\)/,
  });
  await t.rejects(session.run(input, [2, 3, 4, 1]), { code: 'inference-failed', message: /inference failed on cpu/ });
  await session.close();
  await session.close();
  await t.rejects(session.run(input, [2, 3, 2, 2]), { code: 'closed' });
});

t.test('a file onnxruntime cannot load is a bad-model error naming it', async (t) => {
  const path = await modelFile(t, new TextEncoder().encode('not a model at all'));
  await t.rejects(createSession(path, { ep: 'cpu' }), {
    code: 'bad-model',
    file: path,
    message: new RegExp(`^${path}: onnxruntime could not load the model`),
  });
  await t.rejects(createSession(join(tmpdir(), 'edgetl-no-such-model.onnx'), { ep: 'cpu' }), { code: 'bad-model' });
});

// About a machine without the provider library: after `edgetl setup cuda` the reasons are others (cuda-detection tests them).
const cudaHere = gatherHostFacts().cuda.providerLibraryPresent;
t.test(
  '--ep cuda without the provider library falls back to CPU with the install command; strict fails',
  { skip: cudaHere ? 'this machine has the CUDA provider library (edgetl setup cuda ran)' : false },
  async (t) => {
    const session = await createSession(tinyModel, { ep: 'cuda', cudaDeviceId: 0 });
    t.teardown(() => session.close());
    t.equal(session.provider.used, 'cpu');
    t.equal(session.provider.fallbacks[0].provider, 'cuda');
    t.ok(session.provider.fallbacks[0].reason.includes(CUDA_INSTALL_COMMAND), session.provider.fallbacks[0].reason);
    await t.rejects(createSession(tinyModel, { ep: 'cuda', strictEp: true }), {
      code: 'ep-unavailable',
      message: /`ep: 'cuda'` can't run here \(`strictEp`\): CUDA provider library not found/,
    });
  },
);

t.test('CUDA gets real provider options', async (t) => {
  t.same(sessionOptionsFor('cuda', { cudaDeviceId: 1 }).executionProviders, [{ name: 'cuda', deviceId: 1 }]);
  t.same(sessionOptionsFor('cuda', {}).executionProviders, [{ name: 'cuda', deviceId: 0 }]);
  t.throws(() => sessionOptionsFor('cuda', { cudaDeviceId: -1 }), { code: 'bad-input' });
});

t.test('auto on a machine with only a software adapter runs on CPU and says why', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'edgetl-icd-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const icd = join(dir, 'vk_swiftshader_icd.json');
  await writeFile(icd, JSON.stringify({ ICD: { library_path: './libvk_swiftshader.so' } }));
  const gathered = gatherHostFacts({
    env: { VK_ICD_FILENAMES: icd, PATH: '' },
    runTools: false,
    loaderSearchDirs: [tmpdir(), '/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib'],
  });
  // Without the CUDA provider, whatever this machine has: on a GPU machine after `edgetl setup cuda`, auto would
  // rightly take CUDA, and this test is about the software adapter.
  const hostFacts = { ...gathered, cuda: { ...gathered.cuda, providerLibraryPresent: false } };
  const session = await createSession(tinyModel, { ep: 'auto', hostFacts });
  t.teardown(() => session.close());
  t.equal(session.provider.requested, 'auto');
  t.equal(session.provider.used, 'cpu');
  const webgpu = session.provider.fallbacks.find((f) => f.provider === 'webgpu');
  t.match(webgpu?.reason, /(software WebGPU adapter is available \(SwiftShader)|(no Vulkan loader)/);
  t.ok(
    session.provider.fallbacks.some((f) => f.provider === 'cuda'),
    'the CUDA decision is recorded too',
  );
});

t.test('thread counts and optimization level reach onnxruntime', async (t) => {
  const path = await modelFile(t);
  const session = await createSession(path, { ep: 'cpu', intraOpThreads: 1, interOpThreads: 2 });
  t.match(session.provider, { intraOpThreads: 1, interOpThreads: 2 });
  await session.close();
  // onnxruntime's own log (read from a child process) shows the pools it built.
  const probe = await probeSession(path, 'cpu', {
    intraOpThreads: 1,
    interOpThreads: 2,
    graphOptimizationLevel: 'basic',
  });
  t.equal(probe.created, true, probe.error ?? '');
  t.equal(probe.intraOpThreads, 1);
  t.equal(probe.interOpThreads, 2);
  t.equal(probe.graphOptimizationLevel, 1, 'basic = level 1');
  const defaults = await probeSession(tinyModel, 'cpu');
  t.match(defaults, { created: true, intraOpThreads: 0, interOpThreads: 0 }, "unset means onnxruntime's default (0)");
  t.equal(defaults.allowSpinning, false, 'idle pool threads sleep unless asked to spin');
  const spinning = await probeSession(tinyModel, 'cpu', { allowSpinning: true });
  t.equal(spinning.allowSpinning, true, 'allowSpinning reaches onnxruntime');
  t.equal(
    sessionOptionsFor('cpu', { interOpThreads: 2 }).executionMode,
    'parallel',
    'inter-op threads need parallel mode',
  );
  t.equal(sessionOptionsFor('cpu', {}).executionMode, undefined);
  await t.rejects(createSession(tinyModel, { ep: 'cpu', intraOpThreads: -1 }), {
    code: 'bad-input',
    message: /intraOpThreads/,
  });
  await t.rejects(createSession(tinyModel, { ep: 'cpu', interOpThreads: 1.5 }), {
    code: 'bad-input',
    message: /interOpThreads/,
  });
});

t.test('a probe that fails reports the reason instead of throwing', async (t) => {
  const path = await modelFile(t, new TextEncoder().encode('garbage'));
  const probe = await probeSession(path, 'cpu');
  t.equal(probe.created, false);
  t.ok(probe.error && probe.error.length > 0, probe.error ?? 'no error text');
});

t.test('node placement is read from onnxruntime verbose log lines', async (t) => {
  const prefix = '2026-01-01 00:00:00.0 [V:onnxruntime:, session_state.cc:1385 VerifyEachNodeIsAssignedToAnEp]';
  const log = [
    `${prefix.replace('1385', '1377')} Node placements`,
    `${prefix.replace('1385', '1383')}  Node(s) placed on [WebGpuExecutionProvider]. Number of nodes: 3`,
    `${prefix}   Conv (conv1)`,
    `${prefix}   MemcpyFromHost (Memcpy)`,
    `${prefix}   Relu (relu1)`,
    `${prefix.replace('1385', '1383')}  Node(s) placed on [CPUExecutionProvider]. Number of nodes: 2`,
    `${prefix}   Sum (add)`,
    `${prefix}   Sum (add_1)`,
    '2026-01-01 00:00:00.1 [W:onnxruntime:, session_state.cc:1397 VerifyEachNodeIsAssignedToAnEp] Some nodes were not assigned',
    '... intra_op_param:OrtThreadPoolParams { thread_pool_size: 3 auto_set_affinity: 0 } inter_op_param:OrtThreadPoolParams { thread_pool_size: 1 }',
  ].join('\n');
  const parsed = parseSessionLog(log);
  t.same(parsed.placement, [
    { provider: 'webgpu', nodes: 2, ops: { Conv: 1, Relu: 1 } },
    { provider: 'cpu', nodes: 2, ops: { Sum: 2 } },
  ]);
  t.equal(parsed.intraOpThreads, 3);
  t.equal(parsed.interOpThreads, 1);
  t.equal(
    describePlacement('webgpu', parsed.placement),
    "2 of 4 nodes run on the CPU, not webgpu: onnxruntime's webgpu provider has no kernel for them (Sum x2)",
  );
  const all = parseSessionLog(
    `${prefix.replace('1385', '1380')}  All nodes placed on [WebGpuExecutionProvider]. Number of nodes: 35`,
  );
  t.same(all.placement, [{ provider: 'webgpu', nodes: 35, ops: {} }]);
  t.equal(describePlacement('webgpu', all.placement), 'all 35 nodes run on webgpu');
});

t.test('mostlyOnCpu: more than half of all nodes, or of the convolutions and matrix products', async (t) => {
  t.equal(mostlyOnCpu([{ provider: 'webgpu', nodes: 35, ops: {} }]), false);
  t.equal(
    mostlyOnCpu([
      { provider: 'webgpu', nodes: 2, ops: { Transpose: 2 } },
      { provider: 'cpu', nodes: 68, ops: { QLinearConv: 52, QLinearAdd: 16 } },
    ]),
    true,
  );
  t.equal(
    mostlyOnCpu([
      { provider: 'webgpu', nodes: 18, ops: { Conv: 9, Relu: 9 } },
      { provider: 'cpu', nodes: 3, ops: { Sum: 3 } },
    ]),
    false,
  );
  t.equal(
    mostlyOnCpu([
      { provider: 'webgpu', nodes: 30, ops: { Relu: 28, Conv: 2 } },
      { provider: 'cpu', nodes: 10, ops: { Conv: 10 } },
    ]),
    true,
    'the heavy work left behind',
  );
});
