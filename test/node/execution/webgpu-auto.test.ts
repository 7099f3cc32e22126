// auto's second look at a GPU: the node placement. Its own file (its own process), because onnxruntime keeps one
// WebGPU device per process and edgetl refuses auto on a device an earlier explicit session opened in software.
// The adapter is declared hardware through the facts; underneath it is SwiftShader (correctness only).
import { sharedModel, swiftShaderSkipReason, useSwiftShader } from '../../helpers/shared.js';

useSwiftShader();

const { default: t } = await import('tap');
const { createSession } = await import('../../../src/node/execution/session.js');
const { gatherHostFacts } = await import('../../../src/node/execution/providers.js');

const facts = gatherHostFacts();
const skipReason = swiftShaderSkipReason(facts.vulkan.loader);

const int8 = sharedModel('mobilenetv2-12-int8.onnx');
const fp32 = sharedModel('mobilenet-v1-0.25-224.fp32.onnx');
t.test(
  'auto turns down a GPU that would leave most of the model on the CPU',
  { skip: skipReason || int8.skip || fp32.skip },
  async (t) => {
    const hardware = {
      ...gatherHostFacts(),
      vulkan: {
        ...facts.vulkan,
        vulkaninfoDevices: [{ name: 'Pretend GPU', type: 'PHYSICAL_DEVICE_TYPE_DISCRETE_GPU' }],
      },
    };
    const quantized = await createSession(int8.path!, { ep: 'auto', hostFacts: hardware });
    t.teardown(() => quantized.close());
    t.equal(quantized.provider.used, 'cpu');
    const webgpu = quantized.provider.fallbacks.find((f) => f.provider === 'webgpu');
    t.match(webgpu?.reason, /^\d+ of \d+ nodes run on the CPU, not webgpu.*QLinearConv x\d+.*no faster than cpu$/);

    const float = await createSession(fp32.path!, { ep: 'auto', hostFacts: hardware });
    t.teardown(() => float.close());
    t.equal(float.provider.used, 'webgpu', 'a model WebGPU runs whole is kept on it');
    t.equal(float.provider.adapter?.software, false);
    t.ok(float.provider.notes?.includes('all 35 nodes run on webgpu'), JSON.stringify(float.provider.notes));
  },
);
