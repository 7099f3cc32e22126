// Small ONNX graphs built in tests (no binary fixtures): nodes, typed initializers, inputs and outputs.
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

export type DimSpec = number | string;
export type AttributeValue = number | number[] | string | { float: number } | { floats: number[] };

export const FLOAT = 1;
export const UINT8 = 2;
export const INT8 = 3;
export const INT32 = 6;
export const INT64 = 7;

/** An initializer with little-endian raw data, the way exporters write them. */
export function tensor(name: string, dims: number[], values: ArrayLike<number>, dataType = FLOAT) {
  const count = dims.reduce((a, b) => a * b, 1);
  if (values.length !== count) throw new Error(`tensor ${name}: ${values.length} values for dims [${dims}]`);
  let raw: Uint8Array;
  switch (dataType) {
    case FLOAT:
      raw = new Uint8Array(Float32Array.from(values).buffer);
      break;
    case INT64:
      raw = new Uint8Array(BigInt64Array.from(Array.from(values, (v) => BigInt(v))).buffer);
      break;
    case INT32:
      raw = new Uint8Array(Int32Array.from(values).buffer);
      break;
    case UINT8:
      raw = Uint8Array.from(values);
      break;
    case INT8:
      raw = new Uint8Array(Int8Array.from(values).buffer);
      break;
    default:
      throw new Error(`tensor ${name}: unsupported type ${dataType}`);
  }
  return onnx.TensorProto.create({ name, dims, dataType, rawData: raw });
}

/** Deterministic pseudo-random floats in [-1, 1). */
export function pseudoRandom(count: number, seed = 1): Float32Array {
  const out = new Float32Array(count);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = state / 2 ** 31 - 1;
  }
  return out;
}

export function valueInfo(name: string, dims: DimSpec[] | undefined, elemType = FLOAT) {
  return onnx.ValueInfoProto.create({
    name,
    type: onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({
        elemType,
        shape:
          dims === undefined
            ? undefined
            : onnx.TensorShapeProto.create({
                dim: dims.map((d) =>
                  typeof d === 'number'
                    ? onnx.TensorShapeProto.Dimension.create({ dimValue: d })
                    : onnx.TensorShapeProto.Dimension.create({ dimParam: d }),
                ),
              }),
      }),
    }),
  });
}

function attributeOf(name: string, value: AttributeValue) {
  const A = onnx.AttributeProto.AttributeType;
  if (typeof value === 'number') return onnx.AttributeProto.create({ name, type: A.INT, i: value });
  if (typeof value === 'string')
    return onnx.AttributeProto.create({ name, type: A.STRING, s: new TextEncoder().encode(value) });
  if (Array.isArray(value)) return onnx.AttributeProto.create({ name, type: A.INTS, ints: value });
  if ('float' in value) return onnx.AttributeProto.create({ name, type: A.FLOAT, f: value.float });
  return onnx.AttributeProto.create({ name, type: A.FLOATS, floats: value.floats });
}

export function node(
  opType: string,
  inputs: string[],
  outputs: string[],
  attributes: Record<string, AttributeValue> = {},
  domain?: string,
) {
  return onnx.NodeProto.create({
    opType,
    input: inputs,
    output: outputs,
    name: `${opType}_${outputs[0]}`,
    attribute: Object.entries(attributes).map(([k, v]) => attributeOf(k, v)),
    ...(domain ? { domain } : {}),
  });
}

export interface GraphSpec {
  nodes: ReturnType<typeof node>[];
  inputs: ReturnType<typeof valueInfo>[];
  outputs: ReturnType<typeof valueInfo>[];
  initializers?: ReturnType<typeof tensor>[];
  opset?: number;
  /** Extra opset imports, e.g. { 'com.microsoft': 1 }. */
  domains?: Record<string, number>;
  irVersion?: number;
}

export function model(spec: GraphSpec) {
  return onnx.ModelProto.create({
    irVersion: spec.irVersion ?? 8,
    producerName: 'edgetl-test',
    opsetImport: [
      onnx.OperatorSetIdProto.create({ domain: '', version: spec.opset ?? 13 }),
      ...Object.entries(spec.domains ?? {}).map(([domain, version]) =>
        onnx.OperatorSetIdProto.create({ domain, version }),
      ),
    ],
    graph: onnx.GraphProto.create({
      name: 'test',
      node: spec.nodes,
      input: spec.inputs,
      output: spec.outputs,
      initializer: spec.initializers ?? [],
    }),
  });
}

export function modelBytes(spec: GraphSpec): Uint8Array {
  return onnx.ModelProto.encode(model(spec)).finish();
}
