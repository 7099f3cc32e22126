import t from 'tap';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import {
  DEFAULT_BACKBONE_ID,
  catalogEntries,
  catalogJson,
  findCatalogEntry,
  findCatalogEntryBySha256,
} from '../../src/models/catalog.js';
import { repoRoot, sharedModelsDir } from '../helpers/shared.js';

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
  t.equal(apply('mobilenet-v1-0.25-224.fp32', 0), -1);
  t.ok(Math.abs(apply('mobilenet-v1-0.25-224.fp32', 255) - 1) < 1e-12);
  t.equal(apply('resnet8-cifar10.fp32', 200), 200);
  t.match(findCatalogEntry('resnet8-cifar10.fp32')!.preprocess, { width: 32, height: 32, resize: 'stretch', crop: 'none' });
  t.equal(apply('efficientnet-lite4-11', 127), 0);
  t.equal(apply('efficientnet-lite4-11', 255), 1);
  t.equal(findCatalogEntry('efficientnet-lite4-11')!.preprocess.layout, 'NHWC');
  t.ok(Math.abs(apply('resnet50-v1-12', 255, 0) - (1 - 0.485) / 0.229) < 1e-12);
  for (const id of ['resnet18-v1-7', 'mobilenetv2-12-int8', 'shufflenet-v2-12-qdq', 'resnet50.arch-only']) {
    t.match(findCatalogEntry(id)!.preprocess, { width: 224, height: 224, resizeTo: 256, crop: 'center', resize: 'shorter-side' }, id);
  }
  t.equal(findCatalogEntry('shufflenet-v2-12-qdq')!.fixedBatch, 1);
});

const modelsDir = sharedModelsDir();

t.test('every shared model file has an entry with its sha256, size and relative path', { skip: modelsDir ? false : 'needs ../shared/models' }, async (t) => {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.onnx')) files.push(path);
    }
  };
  walk(modelsDir!);
  t.equal(files.length, 7, 'four pretrained and three arch-only files');
  for (const path of files) {
    const sha = createHash('sha256').update(readFileSync(path)).digest('hex');
    const entry = findCatalogEntryBySha256(sha);
    t.ok(entry, `${relative(modelsDir!, path)} is in the catalog`);
    t.equal(entry?.file, relative(modelsDir!, path));
    t.equal(entry?.bytes, statSync(path).size);
  }
  const local = catalogEntries().filter((e) => !e.url);
  t.equal(local.length, 5, 'entries without a download URL are the converted and arch-only shared files');
});

t.test('sizes and hashes agree with MODELS.md', { skip: modelsDir ? false : 'needs ../shared/models/MODELS.md' }, async (t) => {
  const text = readFileSync(join(modelsDir!, 'MODELS.md'), 'utf8');
  // Zoo table rows: | <zoo path> | <bytes> | <sha256> |
  const rows = [...text.matchAll(/^\|\s*((?:validated|Computer_Vision)\/\S+\.onnx)\s*\|\s*(\d+)\s*\|\s*([0-9a-f]{64})\s*\|/gm)];
  t.equal(rows.length, 12, 'twelve zoo files listed');
  for (const [, zooPath, bytes, sha] of rows) {
    const entry = findCatalogEntry(basename(zooPath, '.onnx'));
    t.ok(entry, `${zooPath} has an entry`);
    t.equal(entry?.bytes, Number(bytes), `${zooPath} bytes`);
    t.equal(entry?.sha256, sha, `${zooPath} sha256`);
    t.equal(entry?.url, `https://github.com/onnx/models/raw/main/${zooPath}`);
  }
});
