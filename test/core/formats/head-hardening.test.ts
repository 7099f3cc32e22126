/**
 * Head files a hostile or unlucky user might hand edgetl: heads that validate field by field but overflow at
 * inference, oversized files and label lists, deeply nested metadata, the reserved label, and a seeded fuzz of
 * the parser. Each must be refused with an EdgetlError naming the file, quickly, or load into a head whose
 * predictions are finite and which serializes again.
 */
import t from 'tap';
import { mkdtemp, rm, writeFile, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trainHead } from '../../../src/core/heads/train.js';
import { Head } from '../../../src/core/heads/head.js';
import { parseHeadFile, serializeHeadFile, type HeadFileContent } from '../../../src/core/formats/head-file.js';
import { MAX_HEAD_LABELS, MAX_METADATA_DEPTH } from '../../../src/core/formats/head-limits.js';
import { loadHead } from '../../../src/node/head-io.js';
import { headCommand } from '../../../src/node/cli/head.js';
import { EdgetlError } from '../../../src/core/util/errors.js';
import { Random } from '../../../src/core/heads/random.js';
import { IMAGENET_224 } from '../../../src/core/preprocess/spec.js';
import { gaussianClusters } from '../heads/synthetic.js';
import { run } from '../../node/cli/head-fixtures.js';

const backbone = { id: 'tiny-test', sha256: 'ab'.repeat(32), embeddingDim: 8, preprocess: IMAGENET_224 };
const { data, labels } = gaussianClusters({ perClass: [20, 20, 20], dim: 8, separation: 3, seed: 4 });

async function trained(
  type: 'linear' | 'mlp' | 'prototype',
  normalization: 'none' | 'l2' | 'standardize' = 'standardize',
  l2?: number,
) {
  return trainHead(data, labels, {
    type,
    ...(l2 !== undefined ? { l2 } : {}),
    backbone,
    seed: 1,
    normalization,
    rejectRate: 0.05,
    mlp: { epochs: 5, hidden: [6] },
  });
}

/** The head's file content with one tensor changed, written as float32 (float16 could not hold the values). */
function withTensor(head: Head, name: string, change: (values: Float32Array) => void): string {
  const content: HeadFileContent = head.toFileContent();
  const tensors = content.tensors.map((tensor) => {
    if (tensor.name !== name) return tensor;
    const copy = Float32Array.from(tensor.data);
    change(copy);
    return { ...tensor, data: copy };
  });
  return serializeHeadFile({ ...content, tensors }, { dtype: 'float32' });
}

function edited(text: string, edit: (doc: Record<string, any>) => void): string {
  const doc = JSON.parse(text);
  edit(doc);
  return JSON.stringify(doc);
}

async function scratch(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'edgetl-head-hard-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

t.test('heads whose inference would overflow are refused at load', async (t) => {
  const linear = await trained('linear');
  const refused = (text: string, field: RegExp, what: string) =>
    t.throws(() => Head.parse(text, { file: 'head.json' }), { code: 'head-nonfinite', message: field }, what);
  refused(
    withTensor(linear, 'normalization.std', (v) => (v[3] = 1e-45)),
    /^head\.json: .*normalization\.std is 1\.4\d*e-45 at index 3/,
    'std 1e-45 (folded weights become infinite)',
  );
  refused(
    edited(linear.serialize(), (d) => (d.calibration.temperature = 5e-324)),
    /^head\.json: .*"calibration\.temperature" is 5e-324/,
    'temperature 5e-324',
  );
  refused(
    edited(linear.serialize(), (d) => (d.calibration.temperature = 1e-37)),
    /^head\.json: .*can reach/,
    'temperature 1e-37 with ordinary logits',
  );
  refused(
    withTensor(linear, 'linear.weight', (v) => v.fill(3.4e38, 0, 8)),
    /^head\.json: the logit of ".*" can reach/,
    'float32 weights near 3.4e38',
  );
  refused(
    withTensor(linear, 'linear.bias', (v) => (v[1] = 3.4e38)),
    /can reach/,
    'a bias near 3.4e38 (times a temperature below 1, or plus any weight)',
  );
  const mlp = await trained('mlp', 'none');
  refused(
    withTensor(mlp, 'mlp.layers.0.weight', (v) => v.fill(1e36)),
    /can reach/,
    'an MLP whose hidden layer overflows',
  );
  const prototype = await trained('prototype', 'l2');
  t.ok(
    Head.parse(withTensor(prototype, 'prototype.sums', (v) => v.fill(3e38, 0, 4))),
    'a prototype head scores by cosine: huge sums are harmless',
  );
  for (const head of [linear, mlp, prototype, await trained('linear', 'l2'), await trained('mlp', 'standardize')]) {
    t.ok(Head.parse(head.serialize()), `a trained ${head.type} head (${head.normalization.kind}) loads`);
  }
});

t.test('a score is never NaN: non-finite or overflowing embeddings are refused at predict', async (t) => {
  // weakly regularized, so its weights are large enough for a float32-sized input to overflow a logit
  const head = await trained('linear', 'none', 1e-6);
  const nan = new Float32Array(8).fill(0.5);
  nan[2] = Number.NaN;
  t.throws(() => head.predict(nan), { code: 'head-nonfinite', message: /input 0.*non-finite values/ });
  const weights = head.weights as { weight: Float32Array };
  const huge = Float32Array.from({ length: 8 }, (_, d) => Math.sign(weights.weight[d]!) * 3e38);
  const reach = weights.weight.subarray(0, 8).reduce((sum, w) => sum + Math.abs(w), 0) * 3e38;
  t.ok(reach > 3.5e38, `this input overflows class 0's logit (${reach.toExponential(2)})`);
  t.throws(() => head.predictMany(Float32Array.from([...huge, ...huge]), 2), {
    code: 'head-nonfinite',
    message: /input 0.*overflowed/,
  });
  t.throws(() => head.probabilities(Float32Array.from([...new Float32Array(8).fill(1), ...nan])), {
    code: 'head-nonfinite',
    message: /input 1/,
  });
  t.ok(Number.isFinite(head.predict(new Float32Array(8).fill(0.5)).score), 'ordinary embeddings still score');
});

t.test('oversized head files are refused before parsing, within seconds', async (t) => {
  const dir = await scratch(t);
  const good = (await trained('linear')).serialize();
  t.throws(() => parseHeadFile(good, { file: 'head.json', maxBytes: 1000 }), {
    code: 'head-too-large',
    message: /^head\.json: head file is \d+ characters, over the limit of 1000 bytes/,
  });
  // 250 MB on disk (sparse): refused by its size, not read
  const big = join(dir, 'big.json');
  await writeFile(big, '{"format":"edgetl-head","labels":[');
  await truncate(big, 250 * 1024 * 1024);
  let started = Date.now();
  await t.rejects(loadHead(big), {
    code: 'head-too-large',
    message: new RegExp(
      `${big}: head file is 262144000 bytes, over the limit of 67108864 bytes.*EDGETL_MAX_HEAD_BYTES`,
    ),
  });
  t.ok(Date.now() - started < 5000, `refused in ${Date.now() - started} ms`);
  const saved = process.env.EDGETL_MAX_HEAD_BYTES;
  t.teardown(() =>
    saved === undefined ? delete process.env.EDGETL_MAX_HEAD_BYTES : (process.env.EDGETL_MAX_HEAD_BYTES = saved),
  );
  const small = join(dir, 'small.json');
  await writeFile(small, good);
  process.env.EDGETL_MAX_HEAD_BYTES = '2000';
  await t.rejects(
    loadHead(small),
    { code: 'head-too-large', message: /over the limit of 2000 bytes/ },
    'the limit is configurable',
  );
  delete process.env.EDGETL_MAX_HEAD_BYTES;
  // many labels under the size limit: refused by their count before any per-label work
  const many = edited(good, (d) => (d.labels = Array.from({ length: 200_000 }, (_, i) => `c${i}`)));
  started = Date.now();
  t.throws(() => parseHeadFile(many, { file: 'many.json' }), {
    code: 'head-labels',
    message: new RegExp(`^many\\.json: .*lists 200000 labels, over the limit of ${MAX_HEAD_LABELS}`),
  });
  t.ok(Date.now() - started < 5000, `200 000 labels refused in ${Date.now() - started} ms`);
});

t.test('deeply nested metadata is refused at load, naming the file and the field', async (t) => {
  const dir = await scratch(t);
  const good = (await trained('prototype', 'l2')).serialize();
  // JSON text nested `levels` deep ({"x":[{"x":[...1...]}]}), built as text: JSON.stringify itself would overflow
  const deep = (levels: number) => {
    let open = '';
    let close = '';
    for (let i = 0; i < levels; i++) {
      open += i % 2 ? '[' : '{"x":';
      close = (i % 2 ? ']' : '}') + close;
    }
    return `${open}1${close}`;
  };
  const withRaw = (text: string, placeholder: string, raw: string) => text.replace(JSON.stringify(placeholder), raw);
  for (const field of ['options', 'metrics'] as const) {
    const text = withRaw(
      edited(good, (d) => (d.training[field] = { nested: 'DEEP' })),
      'DEEP',
      deep(20_000),
    );
    t.throws(
      () => Head.parse(text, { file: 'deep.json' }),
      {
        code: 'head-invalid',
        message: new RegExp(
          `^deep\\.json: head file field "training\\.${field}\\.nested[.\\[].*nests deeper than ${MAX_METADATA_DEPTH} levels`,
        ),
      },
      `training.${field}`,
    );
  }
  t.throws(
    () =>
      Head.parse(
        withRaw(
          edited(good, (d) => (d.backbone.preprocess.extra = 'DEEP')),
          'DEEP',
          deep(5000),
        ),
        { file: 'deep.json' },
      ),
    { message: /"backbone\.preprocess\.extra.*nests deeper/ },
    'also under backbone',
  );
  const file = join(dir, 'deep.json');
  await writeFile(
    file,
    withRaw(
      edited(good, (d) => (d.training.options = 'DEEP')),
      'DEEP',
      deep(10_000),
    ),
  );
  const result = await run(headCommand, ['inspect', file, '--json']);
  t.ok(result.error instanceof EdgetlError, 'head inspect --json fails with an EdgetlError, not a stack overflow');
  t.match(result.error?.message, new RegExp(`^${file}: head file field "training\\.options`));
  const fine = withRaw(
    edited(good, (d) => (d.training.options = { a: 'DEEP' })),
    'DEEP',
    deep(MAX_METADATA_DEPTH - 2),
  );
  t.ok(Head.parse(fine).serialize(), `${MAX_METADATA_DEPTH - 1} levels load and serialize`);
});

t.test('the reserved label "unknown" is refused in head files', async (t) => {
  const good = (await trained('prototype', 'l2')).serialize();
  const text = edited(good, (d) => {
    const old = d.labels[1];
    d.labels[1] = 'unknown';
    d.training.counts.unknown = d.training.counts[old];
    delete d.training.counts[old];
  });
  t.throws(() => Head.parse(text, { file: 'head.json' }), {
    code: 'head-labels',
    message: /^head\.json: head file field "labels\[1\]" is "unknown", which edgetl reserves for rejected predictions/,
  });
});

/** One random edit of a head file: a value replaced, a key dropped or added, or the text itself damaged. */
function mutate(text: string, random: Random): string {
  const pick = <T>(items: readonly T[]): T => items[random.int(items.length)]!;
  const junk = (): unknown =>
    pick<() => unknown>([
      () => 0,
      () => -1,
      () => 1e308,
      () => -1e308,
      () => 5e-324,
      () => 1e-45,
      () => 3.4e38,
      () => 2 ** 53 + 1,
      () => 1.5,
      () => '',
      () => 'unknown',
      () => '\u001b[2J',
      () => 'x'.repeat(1000),
      () => null,
      () => true,
      () => [],
      () => {},
      () => ({ __proto__: { polluted: 1 } }),
      () => [1, 2, 3],
      () => ({ kind: 'l2' }),
      () => 'NaN',
      () => -0,
    ])();
  let doc: any;
  try {
    doc = JSON.parse(text);
  } catch {
    doc = undefined;
  }
  if (doc === undefined || random.next() < 0.25) {
    // damage the text: cut, flip a character, repeat a slice
    const at = random.int(text.length);
    const kind = random.int(3);
    if (kind === 0) return text.slice(0, at);
    if (kind === 1) return text.slice(0, at) + String.fromCharCode(32 + random.int(95)) + text.slice(at + 1);
    return text.slice(0, at) + text.slice(Math.max(0, at - 50), at) + text.slice(at);
  }
  // walk to a random container, then change one of its entries
  let node: any = doc;
  for (let depth = 0; depth < 4; depth++) {
    const keys = Object.keys(node);
    if (keys.length === 0) break;
    const key = pick(keys);
    const child = node[key];
    if (typeof child !== 'object' || child === null || random.next() < 0.3) {
      const action = random.int(4);
      if (action === 0) delete node[key];
      else if (action === 1)
        node[Array.isArray(node) ? node.length : pick(['__proto__', 'constructor', 'extra', key + '2'])] = junk();
      else if (action === 2 && key === 'data' && typeof child === 'string')
        node[key] = child.slice(0, random.int(child.length)) + 'AAAA';
      else node[key] = junk();
      return JSON.stringify(doc);
    }
    node = child;
  }
  return JSON.stringify(doc);
}

t.test('seeded fuzz: 400 mutations of head files load cleanly or fail with an EdgetlError', async (t) => {
  const heads = [await trained('linear'), await trained('mlp', 'l2'), await trained('prototype', 'none')];
  const random = new Random(20261201);
  const outcomes = { refused: 0, loaded: 0 };
  const codes = new Map<string, number>();
  const started = Date.now();
  for (let i = 0; i < 400; i++) {
    const source = heads[i % heads.length]!;
    let text = source.serialize({ dtype: random.next() < 0.5 ? 'float16' : 'float32' });
    const edits = 1 + random.int(3);
    for (let e = 0; e < edits; e++) text = mutate(text, random);
    let head: Head;
    try {
      head = Head.parse(text, { file: `mutant-${i}.json` });
    } catch (error) {
      if (!(error instanceof EdgetlError) || !error.message.startsWith(`mutant-${i}.json: `)) {
        t.fail(`mutation ${i}: not an EdgetlError naming the file: ${(error as Error).stack}`);
        continue;
      }
      outcomes.refused++;
      codes.set(error.code, (codes.get(error.code) ?? 0) + 1);
      continue;
    }
    outcomes.loaded++;
    const embedding = Float32Array.from({ length: head.embeddingDim }, () => random.normal());
    const prediction = head.predict(embedding, { topK: 2 });
    if (!Number.isFinite(prediction.score) || prediction.topK.some((k) => !Number.isFinite(k.score)))
      t.fail(`mutation ${i}: loaded but scores ${prediction.score}`);
    try {
      Head.parse(head.serialize({ dtype: 'float32' }));
    } catch (error) {
      t.fail(`mutation ${i}: loaded but does not round-trip: ${(error as Error).message}`);
    }
  }
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype pollution');
  // The schema refuses fields it does not know (an added "extra" or "constructor" key), which the hand-written parser
  // ignored: fewer mutants load than before (10 of 400 with this seed, since heads also carry a low-confidence cut).
  // What matters is that both outcomes occur: mutants that load are checked to predict and round-trip above.
  t.ok(
    outcomes.refused > 100 && outcomes.loaded >= 5,
    `both outcomes happen (${outcomes.refused} refused: ${[...codes].map(([c, n]) => `${c} ${n}`).join(', ')}; ${outcomes.loaded} loaded)`,
  );
  t.ok(Date.now() - started < 60_000, `400 mutations in ${Date.now() - started} ms (no hang)`);
});
