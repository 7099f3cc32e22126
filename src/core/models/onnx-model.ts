// onnx-proto's declarations (and toNumber's below) use the global `Long` of @types/long, which protobufjs installs:
// referencing it here puts it into the emitted declarations, so strict consumers type-check with any `types` setting.
/// <reference types="@types/long" preserve="true" />
import onnxProto from 'onnx-proto';
import type { onnx as OnnxNamespace } from 'onnx-proto';
import protobuf from 'protobufjs/minimal.js';
import { EdgetlError, describeError } from '../util/errors.js';

/**
 * ONNX protobuf parsing and encoding, runtime-neutral (no node:*): the browser reuses it for graph surgery.
 *
 * The schema is the `onnx-proto` package (generated from onnx 1.10.2, IR version 8). Fields a newer ONNX adds are
 * unknown to it and protobufjs silently skips them on decode, so a re-encoded model would lose them. The shared models
 * (IR 7 and 8) carry no such fields; parseOnnxModel counts skipped fields anyway, and encodeOnnxModel refuses to
 * write a model that lost some rather than hand onnxruntime a quietly altered graph.
 */
export const onnx = onnxProto.onnx;

/** A decoded model (what parseOnnxModel returns). */
export type ModelProto = OnnxNamespace.ModelProto;
/** Interfaces: what the analysis code accepts (decoded messages and hand-built objects alike). */
export type IModelProto = OnnxNamespace.IModelProto;
export type IGraphProto = OnnxNamespace.IGraphProto;
export type INodeProto = OnnxNamespace.INodeProto;
export type ITensorProto = OnnxNamespace.ITensorProto;
export type IValueInfoProto = OnnxNamespace.IValueInfoProto;
export type IAttributeProto = OnnxNamespace.IAttributeProto;

/** The IR version the bundled schema describes in full. */
export const SCHEMA_IR_VERSION = 8;

/** ONNX TensorProto.DataType values used across edgetl. */
export const ElementType = {
  UNDEFINED: 0,
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  BFLOAT16: 16,
} as const;

const ELEMENT_TYPE_NAMES: Record<number, string> = {
  0: 'undefined',
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  4: 'uint16',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  8: 'string',
  9: 'bool',
  10: 'float16',
  11: 'float64',
  12: 'uint32',
  13: 'uint64',
  14: 'complex64',
  15: 'complex128',
  16: 'bfloat16',
  17: 'float8e4m3fn',
  18: 'float8e4m3fnuz',
  19: 'float8e5m2',
  20: 'float8e5m2fnuz',
  21: 'uint4',
  22: 'int4',
  23: 'float4e2m1',
};

/** Readable element type name (`float32`, `uint8`, ...), as onnxruntime's JS API spells most of them. */
export function elementTypeName(elementType: number): string {
  return ELEMENT_TYPE_NAMES[elementType] ?? `type-${elementType}`;
}

/** Counts fields the schema does not know, which protobufjs would otherwise drop without a word. */
class CountingReader extends protobuf.Reader {
  unknownFields = 0;
  override skipType(wireType: number): protobuf.Reader {
    this.unknownFields++;
    return super.skipType(wireType);
  }
}

const unknownFieldCounts = new WeakMap<object, number>();

/**
 * Decode with the counting reader. onnx-proto uses its own `protobufjs/minimal` import; should a package manager
 * ever give it a different copy than ours, it would not recognise our Reader (it throws before reading a byte), and
 * we decode plainly instead: parsing still works, only the unknown-field guard is lost.
 */
function decodeCounting(reader: CountingReader, bytes: Uint8Array): ModelProto {
  try {
    return onnx.ModelProto.decode(reader);
  } catch (error) {
    if (reader.pos === 0 && /illegal buffer/i.test(describeError(error))) return onnx.ModelProto.decode(bytes);
    throw error;
  }
}

/** Number of fields parseOnnxModel had to skip because the bundled schema does not know them (0 for IR <= 8). */
export function unknownFieldCount(model: IModelProto): number {
  return unknownFieldCounts.get(model) ?? 0;
}

/**
 * Decode an ONNX model. Throws EdgetlError('onnx-parse') naming `file` when the bytes are not an ONNX model
 * (wrong format, truncated, or a protobuf without a graph).
 */
export function parseOnnxModel(bytes: Uint8Array, file?: string): ModelProto {
  const where = file ?? 'ONNX model';
  if (bytes.length === 0)
    throw new EdgetlError('onnx-parse', `${where}: the file is empty, not an ONNX model`, { file });
  const reader = new CountingReader(bytes);
  let model: ModelProto;
  try {
    model = decodeCounting(reader, bytes);
  } catch (error) {
    const reason = /index out of range/i.test(describeError(error))
      ? 'the data ends early (truncated download or copy?)'
      : describeError(error);
    throw new EdgetlError('onnx-parse', `${where}: not a readable ONNX model: ${reason}`, { file, cause: error });
  }
  // Protobuf accepts many byte strings as "some message"; a real model has a graph with nodes and an opset.
  if (!model.graph?.node?.length || model.opsetImport.length === 0) {
    throw new EdgetlError('onnx-parse', `${where}: not an ONNX model (no graph, nodes or opset import found)`, {
      file,
    });
  }
  if (reader.unknownFields > 0) unknownFieldCounts.set(model, reader.unknownFields);
  return model;
}

/** Encode a model to ONNX bytes. Refuses models that lost fields on parse (see the module comment). */
export function encodeOnnxModel(model: IModelProto): Uint8Array {
  assertLosslessEncode(model);
  return onnx.ModelProto.encode(model).finish();
}

/** Throws EdgetlError('onnx-schema') when `model` was parsed with fields the bundled schema dropped. */
export function assertLosslessEncode(model: IModelProto): void {
  const unknown = unknownFieldCount(model);
  if (unknown > 0) {
    throw new EdgetlError(
      'onnx-schema',
      `this model (IR version ${toNumber(model.irVersion)}) uses ${unknown} field(s) newer than edgetl's ONNX schema ` +
        `(IR ${SCHEMA_IR_VERSION}); rewriting it would drop them. Re-export the model with IR version <= ${SCHEMA_IR_VERSION} ` +
        '(opset <= 17 exporters write that).',
    );
  }
}

/** protobufjs gives int64 fields as number or Long; ONNX sizes fit in a double. */
export function toNumber(value: number | Long | null | undefined): number {
  if (value === null || value === undefined) return 0;
  return typeof value === 'number' ? value : value.toNumber();
}

/** Opset version of `domain` ('' = ai.onnx), or 0 when the model does not import it. */
export function opsetVersion(model: IModelProto, domain: string): number {
  const wanted = domain === 'ai.onnx' ? '' : domain;
  const entry = (model.opsetImport ?? []).find((o) => (o.domain === 'ai.onnx' ? '' : (o.domain ?? '')) === wanted);
  return entry ? toNumber(entry.version) : 0;
}

export function attribute(node: INodeProto, name: string): IAttributeProto | undefined {
  return (node.attribute ?? []).find((a) => a.name === name);
}

export function intAttribute(node: INodeProto, name: string): number | undefined {
  const a = attribute(node, name);
  return a ? toNumber(a.i) : undefined;
}

export function intsAttribute(node: INodeProto, name: string): number[] | undefined {
  const a = attribute(node, name);
  return a?.ints ? a.ints.map((v) => toNumber(v)) : undefined;
}

export function floatAttribute(node: INodeProto, name: string): number | undefined {
  const a = attribute(node, name);
  return a ? (a.f ?? 0) : undefined;
}

export function stringAttribute(node: INodeProto, name: string): string | undefined {
  const a = attribute(node, name);
  return a?.s ? new TextDecoder().decode(a.s) : undefined;
}

export function tensorAttribute(node: INodeProto, name: string): ITensorProto | undefined {
  return attribute(node, name)?.t ?? undefined;
}

export function tensorDims(tensor: ITensorProto): number[] {
  return (tensor.dims ?? []).map((d) => toNumber(d));
}

export function tensorElementCount(tensor: ITensorProto): number {
  return tensorDims(tensor).reduce((a, b) => a * b, 1);
}

function rawView(tensor: ITensorProto): DataView | undefined {
  const raw = tensor.rawData;
  if (!raw || raw.length === 0) return undefined;
  return new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
}

/** Integer tensor values (int64/int32/uint8/int8/...), for shape constants and indices. Undefined for other types. */
export function readIntegerTensor(tensor: ITensorProto): number[] | undefined {
  const count = tensorElementCount(tensor);
  const view = rawView(tensor);
  const type = tensor.dataType ?? 0;
  if (view) {
    const out: number[] = [];
    for (let i = 0; i < count; i++) {
      switch (type) {
        case ElementType.INT64:
          out.push(Number(view.getBigInt64(i * 8, true)));
          break;
        case ElementType.UINT64:
          out.push(Number(view.getBigUint64(i * 8, true)));
          break;
        case ElementType.INT32:
          out.push(view.getInt32(i * 4, true));
          break;
        case ElementType.UINT32:
          out.push(view.getUint32(i * 4, true));
          break;
        case ElementType.INT16:
          out.push(view.getInt16(i * 2, true));
          break;
        case ElementType.UINT16:
          out.push(view.getUint16(i * 2, true));
          break;
        case ElementType.INT8:
          out.push(view.getInt8(i));
          break;
        case ElementType.UINT8:
        case ElementType.BOOL:
          out.push(view.getUint8(i));
          break;
        default:
          return undefined;
      }
    }
    return out;
  }
  switch (type) {
    case ElementType.INT64:
      return (tensor.int64Data ?? []).map((v) => toNumber(v));
    case ElementType.UINT64:
      return (tensor.uint64Data ?? []).map((v) => toNumber(v));
    case ElementType.INT32:
    case ElementType.INT16:
    case ElementType.INT8:
    case ElementType.UINT16:
    case ElementType.UINT8:
    case ElementType.BOOL:
      return [...(tensor.int32Data ?? [])];
    default:
      return undefined;
  }
}

/** Float tensor values as float32 (float32/float64 data); undefined for other types or external data. */
export function readFloatTensor(tensor: ITensorProto): Float32Array | undefined {
  const count = tensorElementCount(tensor);
  const view = rawView(tensor);
  const type = tensor.dataType ?? 0;
  if (view) {
    const out = new Float32Array(count);
    if (type === ElementType.FLOAT) for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
    else if (type === ElementType.DOUBLE) for (let i = 0; i < count; i++) out[i] = view.getFloat64(i * 8, true);
    else return undefined;
    return out;
  }
  if (type === ElementType.FLOAT) return Float32Array.from(tensor.floatData ?? []);
  if (type === ElementType.DOUBLE) return Float32Array.from(tensor.doubleData ?? []);
  return undefined;
}
