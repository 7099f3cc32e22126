import t from 'tap';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import {
  DEFAULT_BACKBONE_ID,
  catalogEntries,
  catalogJson,
  findCatalogEntry,
  findCatalogEntryBySha256,
} from '../../../src/core/models/catalog.js';
import { repoRoot, sharedModelsDir } from '../../helpers/shared.js';

const catalogFile = join(repoRoot, 'models', 'catalog.json');

t.test('models/catalog.json is the catalog module, verbatim', async (t) => {
  if (process.env.EDGETL_WRITE_CATALOG === '1') writeFileSync(catalogFile, catalogJson());
  const onDisk = readFileSync(catalogFile, 'utf8');
  t.equal(onDisk, catalogJson(), 'out of sync: run EDGETL_WRITE_CATALOG=1 npx tap test/models/catalog.test.ts');
  const parsed = JSON.parse(onDisk) as { defaultBackbone: string; entries: unknown[] };
  t.equal(parsed.defaultBackbone, DEFAULT_BACKBONE_ID);
  t.same(parsed.entries, catalogEntries());
});

t.test('entries are well formed: ids are file names without .onnx, unique ids and hashes, zoo URLs', async (t) => {
  const entries = catalogEntries();
  t.equal(new Set(entries.map((e) => e.id)).size, entries.length, 'unique ids');
  t.equal(new Set(entries.map((e) => e.sha256)).size, entries.length, 'unique sha256');
  for (const e of entries) {
    t.equal(basename(e.file), `${e.id}.onnx`, `${e.id}: file name`);
    t.match(e.sha256, /^[0-9a-f]{64}$/, `${e.id}: sha256`);
    t.ok(e.bytes > 0, `${e.id}: bytes`);
    t.equal(e.preprocess.layout, e.input.layout, `${e.id}: preprocess layout matches the input layout`);
    t.ok(e.embedding.dim > 0, `${e.id}: embedding dim`);
    if (e.url !== undefined) {
      t.match(e.url, /^https:\/\/github\.com\/onnx\/models\/raw\/main\/.+\.onnx$/, `${e.id}: zoo URL`);
      t.equal(basename(e.url), e.file, `${e.id}: URL names the file`);
    }
  }
  t.ok(findCatalogEntry(DEFAULT_BACKBONE_ID), 'the default backbone is in the catalog');
  t.equal(DEFAULT_BACKBONE_ID, 'mobilenetv2-12-int8');
});

t.test('lookups by id and sha256 return copies', async (t) => {
  const entry = findCatalogEntry('resnet50-v1-12')!;
  t.equal(entry.bytes, 102576593);
  t.equal(findCatalogEntryBySha256(entry.sha256.toUpperCase())?.id, 'resnet50-v1-12');
  entry.preprocess.mean[0] = 99;
  t.equal(findCatalogEntry('resnet50-v1-12')!.preprocess.mean[0], 0.485, 'callers cannot change the catalog');
  t.equal(findCatalogEntry('nope'), undefined);
  t.equal(findCatalogEntryBySha256('0'.repeat(64)), undefined);
});

t.test('preprocessing per family maps pixel values as the models were trained', async (t) => {
  const apply = (id: string, v: number, c = 0) => {
    const p = findCatalogEntry(id)!.preprocess;
    return (v * p.scale - p.mean[c]) / p.std[c];
  };
  t.equal(apply('efficientnet-lite4-11', 127), 0);
  t.equal(apply('efficientnet-lite4-11', 255), 1);
  t.equal(findCatalogEntry('efficientnet-lite4-11')!.preprocess.layout, 'NHWC');
  t.ok(Math.abs(apply('resnet50-v1-12', 255, 0) - (1 - 0.485) / 0.229) < 1e-12);
  t.ok(Math.abs(apply('tf_efficientnet_lite0_Opset17', 255) - 1) < 1e-12, 'timm lite0: mean = std = 0.5');
  for (const id of ['resnet18-v1-7', 'mobilenetv2-12-int8', 'shufflenet-v2-12-qdq', 'resnet50-v1-12-qdq']) {
    t.match(
      findCatalogEntry(id)!.preprocess,
      { width: 224, height: 224, resizeTo: 256, crop: 'center', resize: 'shorter-side' },
      id,
    );
  }
  t.equal(findCatalogEntry('shufflenet-v2-12-qdq')!.fixedBatch, 1);
});

t.test('the catalog lists only models a user can obtain: bundled with the package or downloadable', async (t) => {
  for (const e of catalogEntries()) {
    t.ok(e.bundled === true || e.url !== undefined, `${e.id}: bundled or has a download URL`);
    t.equal(e.kind, 'pretrained', `${e.id}: real weights (test graphs are described by the tests, not the catalog)`);
  }
  const bundled = catalogEntries().filter((e) => e.bundled);
  t.same(
    bundled.map((e) => e.id),
    [DEFAULT_BACKBONE_ID],
    'the default backbone is the bundled one',
  );
  for (const e of bundled) {
    const path = join(repoRoot, 'models', e.file);
    t.equal(statSync(path).size, e.bytes, `models/${e.file}: size`);
    t.equal(createHash('sha256').update(readFileSync(path)).digest('hex'), e.sha256, `models/${e.file}: sha256`);
    t.ok(
      statSync(join(repoRoot, 'models', `${e.id}.LICENSE.txt`)).size > 1000,
      `models/${e.id}.LICENSE.txt: its license text ships beside it`,
    );
  }
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { files: string[] };
  for (const e of bundled) {
    t.ok(pkg.files.includes(`models/${e.file}`), `package.json files has models/${e.file}`);
    t.ok(pkg.files.includes(`models/${e.id}.LICENSE.txt`), `package.json files has its license`);
  }
  t.ok(pkg.files.includes('models/catalog.json'));
});

const modelsDir = sharedModelsDir();

t.test(
  "a shared model file that the catalog knows has the entry's sha256 and size; others need no entry",
  { skip: modelsDir ? false : 'needs ../shared/models' },
  async (t) => {
    // Whatever ../shared/models holds (users and CI may add models), nothing here depends on which files those are.
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) walk(path);
        else if (name.endsWith('.onnx')) files.push(path);
      }
    };
    walk(modelsDir!);
    for (const path of files) {
      const entry = findCatalogEntry(basename(path, '.onnx'));
      if (!entry) continue;
      const sha = createHash('sha256').update(readFileSync(path)).digest('hex');
      t.equal(sha, entry.sha256, `${relative(modelsDir!, path)} has the catalog sha256`);
      t.equal(statSync(path).size, entry.bytes, `${relative(modelsDir!, path)} has the catalog size`);
    }
    t.pass(`${files.length} model files looked at`);
  },
);

t.test(
  'sizes and hashes agree with MODELS.md',
  { skip: modelsDir && existsSync(join(modelsDir, 'MODELS.md')) ? false : 'needs ../shared/models/MODELS.md' },
  async (t) => {
    const text = readFileSync(join(modelsDir!, 'MODELS.md'), 'utf8');
    // Zoo table rows: | <zoo path> | <bytes> | <sha256> |
    const rows = [
      ...text.matchAll(/^\|\s*((?:validated|Computer_Vision)\/\S+\.onnx)\s*\|\s*(\d+)\s*\|\s*([0-9a-f]{64})\s*\|/gm),
    ];
    t.ok(rows.length > 0, 'zoo files listed');
    for (const [, zooPath, bytes, sha] of rows) {
      const entry = findCatalogEntry(basename(zooPath, '.onnx'));
      if (!entry) continue;
      t.equal(entry.bytes, Number(bytes), `${zooPath} bytes`);
      t.equal(entry.sha256, sha, `${zooPath} sha256`);
      t.equal(entry.url, `https://github.com/onnx/models/raw/main/${zooPath}`);
    }
  },
);
