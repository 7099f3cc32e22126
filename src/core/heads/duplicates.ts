/**
 * Exact duplicate rows in a set of embeddings. A frozen backbone maps identical image content to bit-identical
 * embeddings, so equal rows mean the same photo was included twice (copied, or renamed): such copies land on both
 * sides of a cross-validation or held-out split and make the figures read better than they are.
 */

/** Groups (2+ row indices, ascending) of bit-identical rows of [rows, dim] `data`. */
export function duplicateRowGroups(data: Float32Array, rows: number, dim: number): number[][] {
  const bits = new Uint32Array(data.buffer, data.byteOffset, rows * dim);
  const byHash = new Map<number, number[][]>();
  const groups: number[][] = [];
  for (let r = 0; r < rows; r++) {
    // FNV-1a over the row's bit patterns (so 0 and -0, or two NaN payloads, are told apart like the bytes are)
    let hash = 0x811c9dc5;
    for (let d = 0; d < dim; d++) hash = Math.imul(hash ^ bits[r * dim + d]!, 0x01000193) >>> 0;
    const candidates = byHash.get(hash) ?? [];
    const same = candidates.find((group) => rowsEqual(bits, group[0]!, r, dim));
    if (same) {
      if (same.length === 1) groups.push(same);
      same.push(r);
    } else {
      candidates.push([r]);
      byHash.set(hash, candidates);
    }
  }
  return groups;
}

function rowsEqual(bits: Uint32Array, a: number, b: number, dim: number): boolean {
  for (let d = 0; d < dim; d++) if (bits[a * dim + d] !== bits[b * dim + d]) return false;
  return true;
}
