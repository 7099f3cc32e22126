import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../util/atomic-write.js';
import { EdgetlError } from '../util/errors.js';
import { decodeNpy, encodeNpyHeader, float32LittleEndianBytes, NpyFormatError, type NpyArray } from './npy.js';

/** Write a float32 array as `<path>` (NPY 1.0, '<f4', C order), atomically: a crash leaves the old file or the new one. */
export async function writeNpyFile(path: string, data: Float32Array, shape: readonly number[]): Promise<void> {
  const count = shape.reduce((product, size) => product * size, 1);
  if (count !== data.length) {
    throw new EdgetlError('npy-shape', `cannot write ${path}: shape [${shape.join(', ')}] holds ${count} values but the data has ${data.length}`, { file: path });
  }
  await writeFileAtomic(path, [encodeNpyHeader(shape), float32LittleEndianBytes(data)]);
}

/** Read a float32 NPY file; errors name the file and say what is wrong (magic, dtype, order, truncation). */
export async function readNpyFile(path: string): Promise<NpyArray> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a directory' : (error as Error).message;
    throw new EdgetlError('npy-read', `cannot read ${path}: ${reason}`, { file: path, cause: error });
  }
  try {
    return decodeNpy(bytes);
  } catch (error) {
    if (error instanceof NpyFormatError) throw new EdgetlError('bad-npy', `${path}: ${error.reason}`, { file: path, cause: error });
    throw error;
  }
}
