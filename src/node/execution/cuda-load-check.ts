/**
 * Does onnxruntime really load the CUDA provider here? Opens a one-node model on CUDA in a child process (so a
 * provider that crashes can't take edgetl down) and sorts the outcome. Used after `edgetl setup cuda`; a session
 * on CUDA is otherwise the test itself, with its failure recorded as the fallback reason.
 */
import { encodeOnnxModel, onnx } from '../../core/models/onnx-model.js';
import { probeSession } from './session.js';
import type { NodePlacement } from '../../core/execution/types.js';

export interface CudaLoadCheck {
  /** runs: a session opened on CUDA. no-gpu: the provider loaded, but CUDA found no usable GPU or driver.
   *  load-failed: the provider or a library it needs didn't load. failed: anything else. */
  outcome: 'runs' | 'no-gpu' | 'load-failed' | 'failed';
  message: string;
  placement?: NodePlacement[];
}

/** y = Relu(x), x float [1, 8]: a kernel every CUDA build has, no cuDNN needed. */
function reluModel(): Uint8Array {
  const info = (name: string) =>
    onnx.ValueInfoProto.create({
      name,
      type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 1 }, { dimValue: 8 }] } } },
    });
  return encodeOnnxModel(
    onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'edgetl-cuda-load-check',
      opsetImport: [{ domain: '', version: 17 }],
      graph: {
        name: 'relu',
        node: [{ opType: 'Relu', input: ['x'], output: ['y'], name: 'relu' }],
        input: [info('x')],
        output: [info('y')],
      },
    }),
  );
}

export function classifyCudaLoadError(message: string): CudaLoadCheck['outcome'] {
  if (/cannot open shared object file|undefined symbol|dlopen|Failed to load library|LoadLibrary/i.test(message))
    return 'load-failed';
  if (/CUDA failure (100|35|999|804)|no CUDA-capable device|insufficient|CUDA driver version/i.test(message))
    return 'no-gpu';
  return 'failed';
}

export async function checkCudaLoads(deviceId = 0, env: NodeJS.ProcessEnv = process.env): Promise<CudaLoadCheck> {
  const probe = await probeSession(reluModel(), 'cuda', { cudaDeviceId: deviceId }, env);
  if (probe.created) {
    return {
      outcome: 'runs',
      message: 'onnxruntime opened a session on CUDA',
      ...(probe.placement.length ? { placement: probe.placement } : {}),
    };
  }
  // onnxruntime's exception says only "Failed to load shared library"; its log line names the library.
  const message = [
    probe.error ?? 'the session did not open',
    ...(probe.logErrors ?? []).filter((l) => !probe.error?.includes(l)),
  ].join(' | ');
  return { outcome: classifyCudaLoadError(message), message };
}
