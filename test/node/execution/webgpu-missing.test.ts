// No usable WebGPU adapter: the Vulkan driver list names a driver that isn't there. Own file (own process), because
// onnxruntime sets up WebGPU once per process.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dir = mkdtempSync(join(tmpdir(), 'edgetl-no-adapter-'));
const manifest = join(dir, 'missing_icd.json');
writeFileSync(
  manifest,
  JSON.stringify({
    file_format_version: '1.0.0',
    ICD: { library_path: join(dir, 'libvulkan_missing.so'), api_version: '1.3.0' },
  }),
);
process.env.VK_ICD_FILENAMES = manifest;
delete process.env.VK_DRIVER_FILES;

const { default: t } = await import('tap');
const { rmSync } = await import('node:fs');
const { createSession } = await import('../../../src/node/execution/session.js');
const { gatherHostFacts } = await import('../../../src/node/execution/providers.js');
const { modelBytes, node, tensor, valueInfo } = await import('../../helpers/onnx-graph.js');
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const model = modelBytes({
  nodes: [node('Mul', ['X', 'two'], ['Y'])],
  inputs: [valueInfo('X', ['N', 4])],
  outputs: [valueInfo('Y', ['N', 4])],
  initializers: [tensor('two', [1], [2])],
});
const loader = gatherHostFacts().vulkan.loader;

t.test(
  '--ep webgpu with no adapter falls back to CPU, saying why and what would work',
  { skip: loader ? false : 'needs a Vulkan loader (libvulkan1) to get as far as asking for an adapter' },
  async (t) => {
    const session = await createSession(model, { ep: 'webgpu' });
    t.teardown(() => session.close());
    t.equal(session.provider.used, 'cpu');
    t.match(session.provider.fallbacks[0], {
      provider: 'webgpu',
      reason: /^webgpu session failed to start: no WebGPU adapter .*SwiftShader works: VK_ICD_FILENAMES=/,
    });
    t.same(Array.from((await session.run(Float32Array.from([1, 2, 3, 4]), [1, 4])).data), [2, 4, 6, 8]);
    await t.rejects(createSession(model, { ep: 'webgpu', strictEp: true }), {
      code: 'ep-unavailable',
      message: /^`ep: 'webgpu'` can't run here \(`strictEp`\): webgpu session failed to start/,
    });
  },
);
