import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inCliTerms } from '../../../src/node/cli/common.js';
import { assessWebGpu, gatherHostFacts, planProviders } from '../../../src/node/execution/providers.js';
import { installCudaProvider } from '../../../src/node/execution/cuda-install.js';
import { loadHead } from '../../../src/node/head-io.js';
import { EMBEDDING_SET_FORMAT, readEmbeddingSet, writeEmbeddingSet } from '../../../src/node/embed/embedding-set.js';
import { trainHead } from '../../../src/node/train-head.js';
import { exportMergedModel } from '../../../src/node/export-model.js';
import { selectBackbone } from '../../../src/node/select/select.js';
import { prepareBrowserBench } from '../../../src/node/server/browser-bench.js';
import { tinyClassifier } from '../embed/tiny-backbone.js';
import { trainCommand } from '../../../src/node/cli/train.js';
import { run } from './head-fixtures.js';
import { findEmbedding } from '../../../src/core/models/embedding.js';
import { model, node, valueInfo } from '../../helpers/onnx-graph.js';

t.test('the CLI names the flag where a library error names an option', async (t) => {
  t.equal(
    inCliTerms('port 80 on 127.0.0.1 is already in use: pass another `port` (0 picks any free one)'),
    'port 80 on 127.0.0.1 is already in use: pass --port <another> (or --port 0 for any free one)',
  );
  t.equal(
    inCliTerms(
      "cannot add examples to a linear head without retraining; train a prototype head (`type: 'prototype'`) for that",
    ),
    'cannot add examples to a linear head without retraining; train a prototype head (--head prototype) for that',
  );
  t.match(
    inCliTerms(
      'the head was trained on backbone a (sha256 0123…), but the backbone given is b (sha256 4567…): use backbone a or retrain the head',
    ),
    /: pass --backbone a or retrain the head$/,
  );
  t.equal(inCliTerms('head.json: file not found'), 'head.json: file not found', 'other messages pass unchanged');
});

t.test('a library error about the embedding speaks of the option, the CLI of --embedding', async (t) => {
  const m = model({
    inputs: [valueInfo('x', ['N', 3, 8, 8])],
    outputs: [valueInfo('y', ['N', 3, 8, 8])],
    nodes: [node('Relu', ['x'], ['y'])],
  });
  let message = '';
  try {
    findEmbedding(m, { file: 'odd.onnx' });
  } catch (error) {
    message = (error as Error).message;
  }
  t.match(message, /the `embeddingTensor` option/);
  t.notMatch(message, /--/);
  t.match(inCliTerms(message), /--embedding <tensor>/);
});

/** The message of what `run` throws (or rejects with). */
async function messageOf(run: () => unknown): Promise<string> {
  try {
    await run();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected an error');
}

/** A library message names options, never a flag; the CLI's wording of it names `flag`. */
function namesOptionThenFlag(t: Test, message: string, option: RegExp, flag: RegExp): void {
  t.match(message, option, 'the library names the option');
  t.notMatch(message, /(^|\s|\()--[a-z]/, 'and no flag');
  t.match(inCliTerms(message), flag, 'the CLI names the flag');
}

t.test('execution providers: `ep` and `strictEp` in the library, --ep and --strict-ep in the CLI', async (t) => {
  const here = gatherHostFacts({ runTools: false });
  const noCuda = { ...here, cuda: { ...here.cuda, providerLibraryPresent: false } };
  const strict = await messageOf(() => planProviders('cuda', noCuda, true));
  namesOptionThenFlag(
    t,
    strict,
    /^`ep: 'cuda'` can't run here \(`strictEp`\): /,
    /^--ep cuda can't run here \(--strict-ep\): /,
  );
  const windows = assessWebGpu({ ...here, platform: 'win32', supportedBackends: undefined }).reason;
  namesOptionThenFlag(t, windows, /ask for `ep: 'webgpu'` to choose it/, /ask for --ep webgpu to choose it/);
  const jetson = await messageOf(() => installCudaProvider({ platform: 'linux', arch: 'arm64' }));
  namesOptionThenFlag(t, jetson, /use `ep: 'webgpu'` or `ep: 'cpu'`/, /use --ep webgpu or --ep cpu/);
});

t.test('the CUDA install: `from` and `allowVersionMismatch` in the library, --from in the CLI', async (t) => {
  const missing = join(tmpdir(), 'edgetl-no-such-provider.tgz');
  const message = await messageOf(() => installCudaProvider({ from: missing, platform: 'linux', arch: 'x64' }));
  namesOptionThenFlag(
    t,
    message,
    /^`from: '.*no-such-provider\.tgz'`: no such file/,
    /^--from \S+no-such-provider\.tgz: no such/,
  );
  t.equal(
    inCliTerms('fetch the tarball elsewhere (`npm pack x`) and install from that file (the `from` option)'),
    'fetch the tarball elsewhere (`npm pack x`) and run `edgetl setup cuda --from <file.tgz>`',
  );
  t.equal(inCliTerms('placed anyway (`allowVersionMismatch`)'), 'placed anyway (--allow-version-mismatch)');
});

t.test('files the library reads name the function that writes them; the CLI names the verb', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'edgetl-terms-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const head = await messageOf(() => loadHead(join(dir, 'head.json')));
  namesOptionThenFlag(
    t,
    head,
    /file not found \(trainHead, then head\.save, writes one\)/,
    /`edgetl train <dir> --out <head\.json>`/,
  );
  const set = await messageOf(() => readEmbeddingSet(join(dir, 'train')));
  namesOptionThenFlag(
    t,
    set,
    /file not found \(embedFolder with `out: '.*train'` writes it\)/,
    /file not found \(`edgetl embed <dir> --out \S+train` writes it\)/,
  );

  const embeddings = new Float32Array(12 * 3).map((_, i) => ((i * 7919) % 13) / 13 + (i % 2));
  const labels = Array.from({ length: 12 }, (_, i) => (i % 2 ? 'b' : 'a'));
  const embeddingSet = { backbone: { id: 'x', sha256: 'a'.repeat(64), embeddingDim: 3, preprocess: null } };
  await writeEmbeddingSet(join(dir, 'old'), {
    ...embeddingSet,
    format: EMBEDDING_SET_FORMAT,
    executionProvider: 'cpu',
    classes: ['a', 'b'],
    items: labels.map((label, i) => ({ path: `${i}.jpg`, label })),
    skipped: [],
    embeddings,
  });
  const json = JSON.parse(await readFile(join(dir, 'old.json'), 'utf8'));
  delete json.embeddingsSha256;
  await writeFile(join(dir, 'old.json'), JSON.stringify(json));
  const [warning] = (await readEmbeddingSet(join(dir, 'old'))).warnings;
  namesOptionThenFlag(t, warning ?? '', /write the set again \(embedFolder with `out`\)/, /run `edgetl embed` again/);
  // A verb that reads the set prints the warning in its own terms.
  const fromSet = await run(trainCommand, [join(dir, 'old'), '--out', join(dir, 'old-head.json'), '--json']);
  t.equal(fromSet.code, 0, fromSet.stderr);
  t.match(fromSet.stdout, /run `edgetl embed` again to bind them/);
  t.notMatch(fromSet.stdout, /embedFolder/);

  const model = join(dir, 'tiny.onnx');
  const bytes = tinyClassifier();
  await writeFile(model, bytes);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const trained = await trainHead(embeddings, labels, {
    backbone: { id: 'tiny', sha256, embeddingDim: 3, preprocess: null },
    folds: 2,
  });
  const itself = await messageOf(() => exportMergedModel(trained, { backbone: model, out: model }));
  namesOptionThenFlag(
    t,
    itself,
    /^`out: '.*tiny\.onnx'` is the backbone file itself/,
    /^--out \S+tiny\.onnx is the backbone/,
  );
  const other = await trainHead(embeddings, labels, {
    backbone: { id: 'tiny', sha256: 'b'.repeat(64), embeddingDim: 3, preprocess: null },
    folds: 2,
  });
  const mismatch = await messageOf(() => exportMergedModel(other, { backbone: model, out: join(dir, 'app.onnx') }));
  namesOptionThenFlag(
    t,
    mismatch,
    /: use backbone tiny or retrain the head$/,
    /: pass --backbone tiny or retrain the head$/,
  );
  const byId = await messageOf(() => exportMergedModel(other, { out: join(dir, 'app.onnx'), download: false }));
  namesOptionThenFlag(
    t,
    byId,
    /if it is a file, give its path as the `backbone` option/,
    /if it is a file, pass --backbone <path to it>/,
  );
});

t.test(
  'choosing and benchmarking: `backbones` and runBench in the library, --backbones and bench in the CLI',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'edgetl-terms-select-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    for (const label of ['a', 'b']) {
      await mkdir(join(dir, 'photos', label), { recursive: true });
      await writeFile(join(dir, 'photos', label, '1.jpg'), 'not decoded before the backbones are found');
    }
    await mkdir(join(dir, 'no-models'));
    const none = await messageOf(() =>
      selectBackbone(join(dir, 'photos'), { load: { searchPath: [join(dir, 'no-models')] } }),
    );
    namesOptionThenFlag(t, none, /name them in the `backbones` option/, /name them with --backbones/);
    const nodeProfile = await messageOf(() => prepareBrowserBench('x86-cpu-quick'));
    namesOptionThenFlag(
      t,
      nodeProfile,
      /is for the Node runtime: `runBench\(loadProfile\('x86-cpu-quick'\)\)` runs it/,
      /run it with `edgetl bench --profile x86-cpu-quick`/,
    );
  },
);

t.test('a wrong embedding tensor: the library points at automatic discovery, the CLI at models inspect', async (t) => {
  const m = model({
    inputs: [valueInfo('x', ['N', 3, 8, 8])],
    outputs: [valueInfo('y', ['N', 3, 8, 8])],
    nodes: [node('Relu', ['x'], ['y'])],
  });
  const message = await messageOf(() => findEmbedding(m, { embeddingTensor: 'nope', file: 'odd.onnx' }));
  namesOptionThenFlag(
    t,
    message,
    /without the `embeddingTensor` option the embedding is found automatically/,
    /use `edgetl models inspect` to see the embedding found automatically/,
  );
});
