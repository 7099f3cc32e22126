import t, { type Test } from 'tap';
import { spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, copyFileSync, rmSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, sharedModel, sharedModelsDir } from '../../helpers/shared.js';
import { tinyClassifier } from '../embed/tiny-backbone.js';
import { catalogEntries } from '../../../src/core/models/catalog.js';

const modelsDir = sharedModelsDir();
const mobilenet = sharedModel('mobilenetv2-12-int8.onnx');
const shufflenet = sharedModel('shufflenet-v2-12-qdq.onnx');

// The CLI is tested as users run it: the esbuild bundle, in a child process.
execFileSync(process.execPath, ['esbuild.config.mjs'], { cwd: repoRoot, stdio: 'inherit' });
const cli = join(repoRoot, 'dist', 'cli.js');

const root = mkdtempSync(join(tmpdir(), 'edgetl-cli-models-'));
const emptyDir = join(root, 'empty');
const workDir = join(root, 'work');
mkdirSync(emptyDir);
mkdirSync(workDir);
t.teardown(() => rmSync(root, { recursive: true, force: true }));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: Record<string, string | undefined> = {}): Run {
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    EDGETL_CACHE_DIR: join(root, 'cache'),
    EDGETL_MODEL_PATH: emptyDir,
    EDGETL_DEBUG: undefined,
  };
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) delete childEnv[key];
    else childEnv[key] = value;
  }
  const result = spawnSync(process.execPath, [cli, 'models', ...args], {
    cwd: workDir,
    env: childEnv,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function noStackTrace(t: Test, r: Run): void {
  t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
  t.notMatch(r.stderr, /unexpected error/, 'an expected, explained error');
}

async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

t.test(
  'models list --json: every catalog entry; in empty folders only the bundled default backbone is present',
  async (t) => {
    const r = run(['list', '--json']);
    t.equal(r.code, 0, r.stderr);
    const listed = JSON.parse(r.stdout);
    t.equal(listed.defaultBackbone, 'mobilenetv2-12-int8');
    t.same(
      listed.models.map((m: { id: string }) => m.id),
      catalogEntries().map((e) => e.id),
    );
    t.same(
      listed.models.filter((m: { present: boolean }) => m.present).map((m: { id: string }) => m.id),
      ['mobilenetv2-12-int8'],
    );
    t.same(
      listed.searchPath.map((s: { origin: string }) => s.origin),
      ['EDGETL_MODEL_PATH', './models', 'bundled', 'cache'],
    );
    t.equal(listed.searchPath[2].dir, join(repoRoot, 'models'));
    const mobile = listed.models.find((m: { id: string }) => m.id === 'mobilenetv2-12-int8');
    t.match(mobile, {
      kind: 'pretrained',
      bytes: 3655033,
      license: 'Apache-2.0',
      default: true,
      downloadable: true,
      bundled: true,
      path: join(repoRoot, 'models', 'mobilenetv2-12-int8.onnx'),
    });
    const text = run(['list']);
    t.match(
      text.stdout,
      /mobilenetv2-12-int8 \*\s+pretrained\s+3\.7 MB\s+Apache-2\.0\s+\S*mobilenetv2-12-int8\.onnx \(bundled\)/,
    );
    t.match(text.stdout, /1 of \d+ present locally/);
  },
);

t.test('models inspect <default id> with no configuration uses the bundled copy, offline', async (t) => {
  const r = run(['inspect', 'mobilenetv2-12-int8', '--json', '--offline'], { EDGETL_MODEL_PATH: undefined });
  t.equal(r.code, 0, r.stderr);
  t.match(JSON.parse(r.stdout), {
    id: 'mobilenetv2-12-int8',
    path: join(repoRoot, 'models', 'mobilenetv2-12-int8.onnx'),
    embedding: { dim: 1280 },
  });
});

t.test('models list shows local copies and where they are', { skip: mobilenet.skip }, async (t) => {
  const r = run(['list', '--json'], { EDGETL_MODEL_PATH: modelsDir });
  t.equal(r.code, 0, r.stderr);
  const mobile = JSON.parse(r.stdout).models.find((m: { id: string }) => m.id === 'mobilenetv2-12-int8');
  t.equal(mobile.present, true);
  t.equal(mobile.path, mobilenet.path);
  const text = run(['list'], { EDGETL_MODEL_PATH: modelsDir });
  t.equal(text.code, 0);
  t.match(text.stdout, /mobilenetv2-12-int8 \*\s+pretrained\s+3\.7 MB\s+Apache-2\.0\s+\S*mobilenetv2-12-int8\.onnx/);
  t.match(text.stdout, /resnet50-v1-12\s+pretrained\s+102\.6 MB\s+Apache-2\.0\s+not present \(downloadable\)/);
});

t.test('models list --verify flags a local copy with the wrong sha256 and exits 1', async (t) => {
  const dir = join(root, 'tampered');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'shufflenet-v2-12-qdq.onnx'), 'not the model');
  const r = run(['list', '--json', '--verify'], { EDGETL_MODEL_PATH: dir });
  t.equal(r.code, 1);
  const entry = JSON.parse(r.stdout).models.find((m: { id: string }) => m.id === 'shufflenet-v2-12-qdq');
  t.match(entry, { present: true, verified: false, path: join(dir, 'shufflenet-v2-12-qdq.onnx') });
  const bundled = JSON.parse(r.stdout).models.find((m: { id: string }) => m.id === 'mobilenetv2-12-int8');
  t.match(bundled, { present: true, verified: true }, 'the bundled copy has the catalog sha256');
});

t.test('models inspect <id> --json reports the facts for the int8 MobileNetV2', { skip: mobilenet.skip }, async (t) => {
  const r = run(['inspect', 'mobilenetv2-12-int8', '--json'], { EDGETL_MODEL_PATH: modelsDir });
  t.equal(r.code, 0, r.stderr);
  const facts = JSON.parse(r.stdout);
  t.match(facts, {
    id: 'mobilenetv2-12-int8',
    catalogId: 'mobilenetv2-12-int8',
    path: mobilenet.path,
    sha256: 'cc028fe6cae7bc11a4ff53cfc9b79c920e8be65ce33a904ec3e2a8f66d77f95f',
    quantization: 'qoperator',
    batch: 'dynamic',
    embedding: { dim: 1280 },
    preprocess: { source: 'catalog', layout: 'NCHW', width: 224, resizeTo: 256 },
  });
  t.type(facts.embedding.tensor, 'string');
  t.ok(facts.macsPerImage > 0, 'MACs estimated');
  t.ok(facts.parameterCount > 0, 'parameters counted');
  t.equal(facts.inputs[0].name, 'input');

  const text = run(['inspect', 'mobilenetv2-12-int8'], { EDGETL_MODEL_PATH: modelsDir });
  t.equal(text.code, 0);
  t.match(text.stdout, /quantization\s+qoperator/);
  t.match(text.stdout, /embedding\s+\S+ -> 1280-d/);
});

t.test(
  'a renamed catalog file is recognised by sha256: fixed batch and QDQ for ShuffleNet',
  { skip: shufflenet.skip },
  async (t) => {
    const renamed = join(root, 'my-backbone.onnx');
    copyFileSync(shufflenet.path!, renamed);
    const r = run(['inspect', renamed, '--json']);
    t.equal(r.code, 0, r.stderr);
    t.match(JSON.parse(r.stdout), {
      id: 'shufflenet-v2-12-qdq',
      catalogId: 'shufflenet-v2-12-qdq',
      path: renamed,
      batch: 1,
      quantization: 'qdq',
      embedding: { dim: 1024 },
    });
  },
);

t.test('an unknown model: stated defaults, then its sidecar, then flags', async (t) => {
  const dir = join(root, 'unknown');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'tiny.onnx');
  writeFileSync(path, tinyClassifier({ size: 8 }));

  const plain = run(['inspect', path, '--json']);
  t.equal(plain.code, 0, plain.stderr);
  const facts = JSON.parse(plain.stdout);
  t.match(facts, { id: 'tiny', catalogId: null, batch: 'dynamic', quantization: 'none', embedding: { dim: 3 } });
  t.match(facts.preprocess, { source: 'default', layout: 'NCHW', width: 8, height: 8, mean: [0.485, 0.456, 0.406] });
  t.match(facts.preprocess.notes.join('\n'), /safe defaults/);

  writeFileSync(
    join(dir, 'tiny.edgetl.json'),
    JSON.stringify({ preprocess: { scale: 1, mean: [0, 0, 0], std: [255, 255, 255] } }),
  );
  const withSidecar = JSON.parse(run(['inspect', path, '--json']).stdout);
  t.match(withSidecar.preprocess, {
    source: 'sidecar',
    scale: 1,
    std: [255, 255, 255],
    sidecar: join(dir, 'tiny.edgetl.json'),
  });

  const withFlags = JSON.parse(run(['inspect', path, '--json', '--channel-order', 'BGR', '--scale', '1/255']).stdout);
  t.match(withFlags.preprocess, { source: 'flags', channelOrder: 'BGR', std: [255, 255, 255] });
  t.equal(withFlags.preprocess.scale, 1 / 255);
  const notes = (withFlags.preprocess.notes as string[]).join('\n');
  t.match(notes, /set by flags: --channel-order, --scale/, 'the notes name the flags');
  t.notMatch(notes, /`preprocess\./, 'not the library option');
});

t.test('a broken sidecar fails with the file and field, no stack trace', async (t) => {
  const dir = join(root, 'broken');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'tiny.onnx');
  writeFileSync(path, tinyClassifier());
  writeFileSync(join(dir, 'tiny.edgetl.json'), JSON.stringify({ preprocess: { mean: 'imagenet' } }));
  const r = run(['inspect', path]);
  t.equal(r.code, 1);
  t.match(
    r.stderr,
    `sidecar ${join(dir, 'tiny.edgetl.json')}: field "preprocess.mean" must be array, got string "imagenet"`,
  );
  noStackTrace(t, r);
});

t.test('offline: inspect and fetch say where they looked and which URL failed, promptly', async (t) => {
  // A proxy on a closed local port stands in for "no network" whatever this machine's connectivity.
  const proxy = `http://127.0.0.1:${await closedPort()}`;
  const env = { HTTPS_PROXY: proxy, https_proxy: undefined, NO_PROXY: undefined, no_proxy: undefined };
  const entry = catalogEntries().find((e) => e.id === 'resnet18-v1-7')!;
  for (const args of [
    ['inspect', 'resnet18-v1-7'],
    ['fetch', 'resnet18-v1-7'],
  ]) {
    const r = run(args, env);
    t.equal(r.code, 1, args.join(' '));
    t.match(r.stderr, 'backbone resnet18-v1-7 is not on this machine and could not be downloaded');
    t.match(r.stderr, join(emptyDir, 'resnet18-v1-7.onnx'));
    t.match(r.stderr, join(workDir, 'models', 'resnet18-v1-7.onnx'));
    t.match(r.stderr, join(root, 'cache', 'models', 'resnet18-v1-7.onnx'));
    t.match(r.stderr, entry.url!);
    t.match(r.stderr, /offline/);
    noStackTrace(t, r);
  }
  const offline = run(['inspect', 'resnet18-v1-7', '--offline']);
  t.equal(offline.code, 1);
  t.match(offline.stderr, /Downloading is off \(--offline\); `edgetl models fetch resnet18-v1-7`/);
});

t.test('user mistakes: unknown ids, subcommands and options', async (t) => {
  const unknown = run(['inspect', 'resnet50-v1']);
  t.equal(unknown.code, 1);
  t.match(
    unknown.stderr,
    /unknown backbone "resnet50-v1": not a catalog id, and no resnet50-v1\.onnx in the model search path .*Closest catalog ids: resnet50-v1-12/,
  );
  noStackTrace(t, unknown);

  const missingFile = run(['inspect', './nope.onnx']);
  t.equal(missingFile.code, 1);
  t.match(missingFile.stderr, `backbone file not found: ${join(workDir, 'nope.onnx')}`);

  const notOnnx = join(root, 'not-a-model.onnx');
  writeFileSync(notOnnx, 'hello');
  const garbage = run(['inspect', notOnnx]);
  t.equal(garbage.code, 1);
  t.match(garbage.stderr, notOnnx);
  noStackTrace(t, garbage);

  t.equal(run(['frobnicate']).code, 2);
  t.equal(run([]).code, 2);
  t.equal(run(['list', '--bogus']).code, 2);
  const badFlag = run(['inspect', 'x.onnx', '--mean', '1,2']);
  t.equal(badFlag.code, 2);
  t.match(badFlag.stderr, /--mean must be three numbers/);

  const helpText = run(['--help']);
  t.equal(helpText.code, 0);
  t.match(helpText.stdout, /edgetl models list/);
  t.match(helpText.stdout, /edgetl models inspect <id\|path>/);
});
