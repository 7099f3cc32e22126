import t from 'tap';
import { mkdtemp, rm, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeEmbeddingSet, readEmbeddingSet, EMBEDDING_SET_FORMAT } from '../../../src/node/embed/embedding-set.js';
import { writeNpyFile } from '../../../src/node/embed/npy-file.js';
import { checkFormat } from '../../../src/core/formats/format-schemas.js';
import { IMAGENET_224 } from '../../../src/core/preprocess/spec.js';

const backbone = { id: 'tiny', sha256: 'a'.repeat(64), embeddingDim: 3 };

/** Two labelled items, ants and bees, without embeddings. */
const antsAndBees = {
  backbone,
  executionProvider: 'cpu',
  classes: ['ants', 'bees'],
  items: [
    { path: '/d/ants/1.jpg', label: 'ants' },
    { path: '/d/bees/2.jpg', label: 'bees' },
  ],
  skipped: [],
};

async function scratch(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'edgetl-set-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

t.test('writes the NPY and the JSON the issue describes, and reads them back', async (t) => {
  const dir = await scratch(t);
  const prefix = join(dir, 'train');
  const embeddings = Float32Array.from([1, 2, 3, 4, 5, 6]);
  const written = await writeEmbeddingSet(prefix, {
    ...antsAndBees,
    skipped: [{ path: '/d/bees/bad.jpg', reason: 'truncated JPEG' }],
    embeddings,
  });
  t.same(written, { npy: `${prefix}.npy`, json: `${prefix}.json` });
  const json = JSON.parse(await readFile(`${prefix}.json`, 'utf8'));
  t.same(json.backbone, backbone);
  t.equal(json.executionProvider, 'cpu');
  t.same(json.classes, ['ants', 'bees']);
  t.same(json.items[1], { path: '/d/bees/2.jpg', label: 'bees' });
  t.same(json.skipped, [{ path: '/d/bees/bad.jpg', reason: 'truncated JPEG' }]);
  t.equal(json.format, EMBEDDING_SET_FORMAT);
  const back = await readEmbeddingSet(`${prefix}.npy`);
  t.equal(back.count, 2);
  t.equal(back.dim, 3);
  t.same(Array.from(back.embeddings), Array.from(embeddings));
  t.same(back.classes, ['ants', 'bees']);
});

t.test('a flat folder set has classes null and null labels', async (t) => {
  const dir = await scratch(t);
  await writeEmbeddingSet(join(dir, 'flat'), {
    backbone,
    executionProvider: 'cpu',
    classes: null,
    items: [{ path: 'a.jpg', label: null }],
    skipped: [],
    embeddings: new Float32Array(3),
  });
  const back = await readEmbeddingSet(join(dir, 'flat'));
  t.equal(back.classes, null);
  t.equal(back.items[0]!.label, null);
});

t.test('refuses to write data whose size does not match items x dim', async (t) => {
  const dir = await scratch(t);
  await t.rejects(
    writeEmbeddingSet(join(dir, 'x'), {
      backbone,
      executionProvider: 'cpu',
      classes: null,
      items: [{ path: 'a', label: null }],
      skipped: [],
      embeddings: new Float32Array(4),
    }),
    /1 items x 3 dims needs 3 values, got 4/,
  );
});

t.test('reading reports files that disagree, naming the file', async (t) => {
  const dir = await scratch(t);
  const prefix = join(dir, 's');
  await writeEmbeddingSet(prefix, {
    backbone,
    executionProvider: 'cpu',
    classes: null,
    items: [
      { path: 'a', label: null },
      { path: 'b', label: null },
    ],
    skipped: [],
    embeddings: new Float32Array(6),
  });
  await writeNpyFile(`${prefix}.npy`, new Float32Array(9), [3, 3]);
  await t.rejects(readEmbeddingSet(prefix), /s\.npy has 3 rows but .*s\.json lists 2 items/);
  await writeNpyFile(`${prefix}.npy`, new Float32Array(8), [2, 4]);
  await t.rejects(readEmbeddingSet(prefix), /has 4 columns but .* says embeddingDim 3/);
  await writeNpyFile(`${prefix}.npy`, new Float32Array(6), [6]);
  await t.rejects(readEmbeddingSet(prefix), /expected a 2-D array/);
  await writeFile(`${prefix}.json`, '{"backbone": 3}');
  await t.rejects(
    readEmbeddingSet(prefix),
    /s\.json: embedding set field ".*field "backbone" must be object, got integer 3/,
  );
  await writeFile(`${prefix}.json`, 'not json');
  await t.rejects(readEmbeddingSet(prefix), /s\.json: not valid JSON/);
  await t.rejects(readEmbeddingSet(join(dir, 'missing')), /missing\.json: file not found/);
  const labelled = {
    backbone,
    executionProvider: 'cpu',
    classes: ['x'],
    items: [{ path: 'a', label: 'y' }],
    skipped: [],
  };
  await writeFile(`${prefix}.json`, JSON.stringify(labelled));
  await writeNpyFile(`${prefix}.npy`, new Float32Array(3), [1, 3]);
  await t.rejects(readEmbeddingSet(prefix), /label "y", not one of the classes \[x\]/);
});

t.test('written metadata validates against the published JSON Schema', async (t) => {
  const dir = await scratch(t);
  await writeEmbeddingSet(join(dir, 'labelled'), {
    backbone: { ...backbone, fingerprint: 'f'.repeat(64) },
    executionProvider: 'cpu',
    classes: ['a', 'b'],
    items: [{ path: '/x/a/1.jpg', label: 'a' }],
    skipped: [{ path: '/x/b/2.jpg', reason: 'truncated JPEG' }],
    embeddings: new Float32Array(3),
    preprocess: IMAGENET_224,
    root: '/x',
  });
  await writeEmbeddingSet(join(dir, 'flat'), {
    backbone,
    executionProvider: 'webgpu',
    classes: null,
    items: [{ path: 'a.jpg', label: null }],
    skipped: [],
    embeddings: new Float32Array(3),
  });
  for (const name of ['labelled', 'flat']) {
    const json = JSON.parse(await readFile(join(dir, `${name}.json`), 'utf8'));
    t.same(checkFormat('embeddingsV1', json), [], name);
  }
  t.not(
    checkFormat('embeddingsV1', {
      ...JSON.parse(await readFile(join(dir, 'flat.json'), 'utf8')),
      executionProvider: 'tpu',
    }).length,
    0,
    'the schema can fail',
  );
});

t.test('a set torn by kill -9 between the NPY and the JSON is refused, naming both files', async (t) => {
  const { spawnTypeScript, waitForOutput, killHard } = await import('../../helpers/child-script.js');
  const { fileURLToPath } = await import('node:url');
  const dir = await scratch(t);
  const prefix = join(dir, 'train');
  // the previous run: ants and bees, 2 rows of 3
  await writeEmbeddingSet(prefix, { ...antsAndBees, embeddings: Float32Array.from([1, 2, 3, 4, 5, 6]) });
  t.same((await readEmbeddingSet(prefix)).warnings, [], 'a bound set reads without warnings');
  // the next run (same N x D, other rows) is killed after its NPY is in place and before its JSON is
  const child = spawnTypeScript(fileURLToPath(new URL('../../helpers/crash-writers.ts', import.meta.url)), [
    'torn-set',
    prefix,
    '2',
  ]);
  t.teardown(() => killHard(child));
  await waitForOutput(child, 'ready');
  await killHard(child);
  await t.rejects(readEmbeddingSet(prefix), {
    code: 'embedding-set-torn',
    message: new RegExp(`${prefix}\\.npy does not belong to ${prefix}\\.json`),
  });
});

t.test('a set from before the binding loads with a warning', async (t) => {
  const dir = await scratch(t);
  const prefix = join(dir, 'old');
  await writeNpyFile(`${prefix}.npy`, Float32Array.from([1, 2, 3]), [1, 3]);
  await writeFile(
    `${prefix}.json`,
    JSON.stringify({
      format: EMBEDDING_SET_FORMAT,
      backbone,
      executionProvider: 'cpu',
      classes: null,
      items: [{ path: '/a.jpg', label: null }],
      skipped: [],
    }),
  );
  const set = await readEmbeddingSet(prefix);
  t.equal(set.count, 1);
  t.match(set.warnings, [/old\.json does not record the sha256 of .*old\.npy/]);
  const json = JSON.parse(await readFile(`${prefix}.json`, 'utf8'));
  json.embeddingsSha256 = 'zz';
  await writeFile(`${prefix}.json`, JSON.stringify(json));
  await t.rejects(readEmbeddingSet(prefix), { message: /embeddingsSha256/ }, 'a malformed binding is refused');
});
