/** A version 1 copy of a head file: no open-set section or tensors, as edgetl wrote heads before format 2. */
import { decodeBase64, encodeBase64 } from '../../src/core/formats/base64.js';
import { sha256Hex } from '../../src/core/formats/sha256.js';
import { encodedByteLength, type WeightDType } from '../../src/core/formats/tensor-encoding.js';

export function asVersion1(text: string): string {
  const doc = JSON.parse(text);
  doc.version = 1;
  delete doc.openSet;
  delete doc.adaptation;
  const bytes = decodeBase64(doc.weights.data)!;
  const kept = doc.weights.tensors.filter(
    (x: { name: string }) => !x.name.startsWith('openSet.') && !x.name.startsWith('adaptation.'),
  );
  const end = kept.reduce(
    (max: number, x: { offset: number; shape: number[]; dtype: WeightDType }) =>
      Math.max(max, x.offset + encodedByteLength(x.dtype, x.shape)),
    0,
  );
  const data = bytes.slice(0, end);
  doc.weights.tensors = kept;
  doc.weights.data = encodeBase64(data);
  doc.weights.byteLength = data.length;
  doc.weights.checksum = `sha256:${sha256Hex(data)}`;
  return JSON.stringify(doc);
}
