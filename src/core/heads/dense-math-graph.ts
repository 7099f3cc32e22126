/**
 * The one-node Gemm graph (symbolic sizes) that DenseMath runs on onnxruntime, in Node
 * (src/node/execution/dense-math-ort.ts) and in the browser worker (src/web/execution/dense-math-web.ts).
 * Runtime-neutral: builds bytes, runs nothing.
 */
import { onnx } from '../models/onnx-model.js';

/** Y[m,n] = op(A) . op(B) with A [m,k] (or [k,m] when transA) and B [k,n] (or [n,k] when transB). */
export function gemmModel(transA: boolean, transB: boolean): Uint8Array {
  const valueInfo = (name: string, dims: string[]) => ({
    name,
    type: {
      tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: dims.map((dimParam) => ({ dimParam })) } },
    },
  });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'edgetl',
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'edgetl_dense_math',
      node: [
        {
          opType: 'Gemm',
          input: ['A', 'B'],
          output: ['Y'],
          attribute: [
            { name: 'transA', type: onnx.AttributeProto.AttributeType.INT, i: transA ? 1 : 0 },
            { name: 'transB', type: onnx.AttributeProto.AttributeType.INT, i: transB ? 1 : 0 },
          ],
        },
      ],
      input: [valueInfo('A', transA ? ['k', 'm'] : ['m', 'k']), valueInfo('B', transB ? ['n', 'k'] : ['k', 'n'])],
      output: [valueInfo('Y', ['m', 'n'])],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

/** The four transposition variants, keyed `NN`, `NT`, `TN`, `TT` (transA, transB). */
export function gemmModels(): Record<string, Uint8Array> {
  const models: Record<string, Uint8Array> = {};
  for (const transA of [false, true])
    for (const transB of [false, true])
      models[`${transA ? 'T' : 'N'}${transB ? 'T' : 'N'}`] = gemmModel(transA, transB);
  return models;
}
