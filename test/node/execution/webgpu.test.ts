// WebGPU through SwiftShader (Chromium's CPU Vulkan driver): correctness only, never speed. The driver list must be
// set before onnxruntime creates its WebGPU device (once per process), so this file sets it first thing.
import { sharedModel, swiftShaderSkipReason, useSwiftShader } from '../../helpers/shared.js';
import { cosine } from '../../helpers/vectors.js';

useSwiftShader();

const { default: t } = await import('tap');
const { createSession } = await import('../../../src/node/execution/session.js');
const { gatherHostFacts } = await import('../../../src/node/execution/providers.js');
const { pseudoRandom } = await import('../../helpers/onnx-graph.js');

const facts = gatherHostFacts();
const skipReason = swiftShaderSkipReason(facts.vulkan.loader);

for (const file of ['resnet8-cifar10.fp32.onnx', 'mobilenet-v1-0.25-224.fp32.onnx']) {
  const model = sharedModel(file);
  t.test(
    `${file}: WebGPU (SwiftShader) embeddings match CPU, and the report says software`,
    { skip: skipReason || model.skip },
    async (t) => {
      const cpu = await createSession(model.path!, { ep: 'cpu' });
      t.teardown(() => cpu.close());
      const gpu = await createSession(model.path!, { ep: 'webgpu', strictEp: true });
      t.teardown(() => gpu.close());
      t.equal(gpu.provider.used, 'webgpu');
      t.same(gpu.provider.fallbacks, []);
      t.equal(gpu.provider.adapter?.software, true, 'SwiftShader is flagged as a software adapter');
      t.ok(
        gpu.provider.notes?.some((n) => /software adapter \(SwiftShader\)/.test(n)),
        JSON.stringify(gpu.provider.notes),
      );
      t.ok(gpu.provider.placement && gpu.provider.placement.length > 0, 'node placement was checked');
      t.ok(
        gpu.provider.notes?.some((n) => /nodes run on/.test(n)),
        'and explained',
      );

      const batch = 2;
      const dims = (cpu.inputDims ?? []).map((d) => (typeof d === 'number' ? d : batch));
      dims[0] = batch;
      const perImage = dims.slice(1).reduce((a, b) => a * b, 1);
      const input = pseudoRandom(batch * perImage, 7);
      const output = cpu.outputNames.includes('features') ? 'features' : cpu.outputNames[0];
      const expected = await cpu.run(input, dims, output);
      const actual = await gpu.run(input, dims, output);
      t.same(actual.dims, expected.dims);
      const dim = expected.data.length / batch;
      for (let i = 0; i < batch; i++) {
        const c = cosine(expected.data.subarray(i * dim, (i + 1) * dim), actual.data.subarray(i * dim, (i + 1) * dim));
        t.ok(c >= 0.999, `image ${i}: cosine ${c.toFixed(6)} >= 0.999 over ${dim} values of '${output}'`);
      }
    },
  );
}

const resnet = sharedModel('resnet8-cifar10.fp32.onnx');
t.test('nodes onnxruntime keeps on the CPU under WebGPU are named', { skip: skipReason || resnet.skip }, async (t) => {
  const gpu = await createSession(resnet.path!, { ep: 'webgpu' });
  t.teardown(() => gpu.close());
  // onnxruntime 1.30's WebGPU provider has no Sum kernel; resnet8's residual adds are Sum nodes.
  const cpu = gpu.provider.placement?.find((p) => p.provider === 'cpu');
  t.ok(cpu && cpu.ops.Sum > 0, JSON.stringify(gpu.provider.placement));
  t.ok(
    gpu.provider.notes?.some((n) => /nodes run on the CPU, not webgpu.*Sum x\d/.test(n)),
    JSON.stringify(gpu.provider.notes),
  );
});

t.test('auto never lands on the software adapter, and says why', { skip: skipReason || resnet.skip }, async (t) => {
  const session = await createSession(resnet.path!, { ep: 'auto' });
  t.teardown(() => session.close());
  t.equal(session.provider.used, 'cpu');
  const webgpu = session.provider.fallbacks.find((f) => f.provider === 'webgpu');
  t.match(webgpu?.reason, /software WebGPU adapter.*SwiftShader|already opened WebGPU on a software adapter/);
});
