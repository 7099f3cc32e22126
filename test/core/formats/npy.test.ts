import { createHash } from 'node:crypto';
import t from 'tap';
import { mkdtemp, writeFile, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { encodeNpy, decodeNpy, NpyFormatError } from '../../../src/core/formats/npy.js';
import { writeNpyFile, readNpyFile, NpyRowWriter } from '../../../src/node/embed/npy-file.js';
import { EdgetlError } from '../../../src/core/util/errors.js';

/** The exact bytes numpy writes for np.array([[1,2,3],[4,5,6]], dtype='<f4'), built by hand. */
function handBuiltNpy(): Uint8Array {
  const dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  const headerText = dict + ' '.repeat(128 - 10 - dict.length - 1) + '\n';
  const prefix = [0x93, ...Buffer.from('NUMPY'), 1, 0, headerText.length & 0xff, headerText.length >> 8];
  const data = Buffer.alloc(24);
  [1, 2, 3, 4, 5, 6].forEach((value, i) => data.writeFloatLE(value, i * 4));
  return new Uint8Array([...prefix, ...Buffer.from(headerText, 'latin1'), ...data]);
}

function pythonWithNumpy(): string | undefined {
  for (const python of ['python3', '/usr/bin/python3']) {
    const probe = spawnSync(python, ['-c', 'import numpy'], { encoding: 'utf8' });
    if (probe.status === 0) return python;
  }
  return undefined;
}

t.test('encodes a 2x3 float32 array to the exact bytes numpy writes', async (t) => {
  const encoded = encodeNpy(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
  t.same(Buffer.from(encoded), Buffer.from(handBuiltNpy()));
  t.equal(encoded.length % 4, 0);
  t.equal((encoded.length - 24) % 64, 0, 'data starts on a 64-byte boundary');
});

t.test('decodes the hand-built bytes back to shape and values', async (t) => {
  const { shape, data } = decodeNpy(handBuiltNpy());
  t.same(shape, [2, 3]);
  t.same(Array.from(data), [1, 2, 3, 4, 5, 6]);
});

t.test('round-trips 1-D, empty and unaligned inputs', async (t) => {
  const oneD = decodeNpy(encodeNpy(new Float32Array([0.5, -1.25]), [2]));
  t.same(oneD.shape, [2]);
  t.same(Array.from(oneD.data), [0.5, -1.25]);
  const empty = decodeNpy(encodeNpy(new Float32Array(0), [0, 1280]));
  t.same(empty.shape, [0, 1280]);
  t.equal(empty.data.length, 0);
  // A view starting at an odd offset: decoding must not assume alignment.
  const bytes = encodeNpy(new Float32Array([7, 8, 9]), [3]);
  const shifted = new Uint8Array(bytes.length + 1);
  shifted.set(bytes, 1);
  t.same(Array.from(decodeNpy(shifted.subarray(1)).data), [7, 8, 9]);
});

t.test('refuses a shape that does not match the data', async (t) => {
  t.throws(() => encodeNpy(new Float32Array(5), [2, 3]), NpyFormatError);
});

t.test('decoding reports bad magic, wrong dtype, Fortran order and truncation', async (t) => {
  const good = handBuiltNpy();
  const badMagic = good.slice();
  badMagic[1] = 0x58;
  t.throws(() => decodeNpy(badMagic), /bad magic/);
  const asText = (bytes: Uint8Array) => Buffer.from(bytes).toString('latin1');
  const replace = (from: string, to: string) => new Uint8Array(Buffer.from(asText(good).replace(from, to), 'latin1'));
  t.throws(() => decodeNpy(replace("'<f4'", "'<f8'")), /dtype is '<f8'.*float64/);
  t.throws(() => decodeNpy(replace("'<f4'", "'>f4'")), /big-endian/);
  t.throws(() => decodeNpy(replace('False', 'True ')), /Fortran order/);
  t.throws(() => decodeNpy(good.subarray(0, good.length - 4)), /truncated data/);
  t.throws(() => decodeNpy(good.subarray(0, 30)), /truncated header/);
});

t.test('file read errors name the file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'edgetl-npy-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'x.npy');
  await writeNpyFile(path, new Float32Array([1, 2, 3, 4]), [2, 2]);
  const back = await readNpyFile(path);
  t.same(back.shape, [2, 2]);
  t.same(Array.from(back.data), [1, 2, 3, 4]);
  const bytes = await readFile(path);
  await writeFile(path, bytes.subarray(0, bytes.length - 2));
  const truncated = await readNpyFile(path).catch((e: unknown) => e);
  t.ok(truncated instanceof EdgetlError);
  t.match((truncated as EdgetlError).message, path);
  t.match((truncated as EdgetlError).message, /truncated/);
  t.equal((truncated as EdgetlError).file, path);
  await t.rejects(readNpyFile(join(dir, 'missing.npy')), /missing\.npy: file not found/);
  await t.rejects(writeNpyFile(path, new Float32Array(3), [2, 2]), /shape \[2, 2\] holds 4/);
});

const python = pythonWithNumpy();
t.test('round-trips through numpy', { skip: python ? false : 'python3 with numpy not installed' }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'edgetl-npy-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const ours = join(dir, 'ours.npy');
  const theirs = join(dir, 'theirs.npy');
  const values = Float32Array.from({ length: 5 * 7 }, (_, i) => Math.sin(i) * 1000);
  await writeNpyFile(ours, values, [5, 7]);
  const script = [
    'import sys, numpy as np',
    'a = np.load(sys.argv[1])',
    'assert a.dtype == np.float32 and a.shape == (5, 7), (a.dtype, a.shape)',
    'expected = (np.sin(np.arange(35, dtype=np.float64)) * 1000).astype(np.float32).reshape(5, 7)',
    'assert np.allclose(a, expected, rtol=1e-6, atol=1e-3), "values differ"',
    'np.save(sys.argv[2], (a * 2).astype("<f4"))',
    'np.save(sys.argv[3], np.zeros((3,), dtype=np.float64))',
  ].join('\n');
  const result = spawnSync(python!, ['-c', script, ours, theirs, join(dir, 'f64.npy'), join(dir, 'unused')], {
    encoding: 'utf8',
  });
  t.equal(result.status, 0, result.stderr);
  const back = await readNpyFile(theirs);
  t.same(back.shape, [5, 7]);
  t.same(
    Array.from(back.data),
    Array.from(values, (v) => Math.fround(v * 2)),
  );
  t.same(Buffer.from(encodeNpy(back.data, back.shape)), await readFile(theirs), 'our bytes equal numpy bytes');
  await t.rejects(readNpyFile(join(dir, 'f64.npy')), /f64\.npy: dtype is '<f8'/);
});

t.test('a row writer streams rows and moves the file into place only when finished', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'edgetl-npy-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'rows.npy');
  const writer = await NpyRowWriter.create(path, 3);
  const rows = 50_000; // 600 KB of data: several internal chunks
  for (let r = 0; r < rows; r++) writer.append(Float32Array.of(r, -r, r / 2));
  await t.rejects(readNpyFile(path), /file not found/, 'nothing at the target before finish');
  const finished = await writer.finish();
  t.equal(finished.rows, rows);
  const back = await readNpyFile(path);
  t.equal(
    finished.dataSha256,
    createHash('sha256')
      .update(await readFile(path).then((b) => b.subarray(128)))
      .digest('hex'),
    'the sha256 of the row data after the header',
  );
  t.same(back.shape, [rows, 3]);
  t.same(Array.from(back.data.subarray(0, 6)), [0, -0, 0, 1, -1, 0.5]);
  t.same(Array.from(back.data.subarray((rows - 1) * 3)), [rows - 1, -(rows - 1), (rows - 1) / 2]);
  t.throws(() => writer.append(new Float32Array(3)), /after finish/);

  const aborted = await NpyRowWriter.create(path, 3);
  aborted.append(new Float32Array(3));
  await aborted.abort();
  t.same((await readNpyFile(path)).shape, [rows, 3], 'an aborted rewrite leaves the old file');
  const empty = await NpyRowWriter.create(join(dir, 'empty.npy'), 4);
  await empty.finish();
  t.same((await readNpyFile(join(dir, 'empty.npy'))).shape, [0, 4]);
  t.throws(() => (empty as NpyRowWriter).append(new Float32Array(5)));
});

t.test(
  'a streamed file is byte-identical to numpy-style encoding apart from header padding',
  { skip: python ? false : 'python3 with numpy not installed' },
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'edgetl-npy-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const path = join(dir, 's.npy');
    const writer = await NpyRowWriter.create(path, 2);
    writer.append(Float32Array.of(1.5, 2.5));
    writer.append(Float32Array.of(-3, 4));
    await writer.finish();
    const result = spawnSync(
      python!,
      [
        '-c',
        'import sys, numpy as np; a = np.load(sys.argv[1]); assert a.shape == (2, 2) and a.dtype == np.float32 and a.tolist() == [[1.5, 2.5], [-3.0, 4.0]], (a.shape, a)',
        path,
      ],
      { encoding: 'utf8' },
    );
    t.equal(result.status, 0, result.stderr);
  },
);
