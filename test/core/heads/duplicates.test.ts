import t from 'tap';
import { duplicateRowGroups } from '../../../src/core/heads/duplicates.js';

t.test('finds groups of bit-identical rows, and only those', async (t) => {
  const rows = [
    [1, 2, 3],
    [1, 2, 3.001],
    [1, 2, 3],
    [0, 0, 0],
    [-0, 0, 0],
    [1, 2, 3],
    [0, 0, 0],
  ];
  const data = Float32Array.from(rows.flat());
  t.same(duplicateRowGroups(data, rows.length, 3), [
    [0, 2, 5],
    [3, 6],
  ]);
  t.same(duplicateRowGroups(Float32Array.from([1, 2, 3, 4]), 2, 2), [], 'no duplicates, no groups');
});
