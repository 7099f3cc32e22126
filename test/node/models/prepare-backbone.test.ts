import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onnx, type IModelProto } from '../../../src/core/models/onnx-model.js';
import { prepareBackbone } from '../../../src/node/models/prepare-backbone.js';
import { inferShapes } from '../../../src/core/models/shapes.js';
import { tinyTorchvisionLike } from '../../core/models/tiny-models.js';

t.test('preparing a backbone infers the graph shapes once, on a cache miss and on a hit', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'edgetl-prepare-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const source = join(dir, 'tiny.onnx');
  writeFileSync(source, onnx.ModelProto.encode(tinyTorchvisionLike('N')).finish());
  let inferences = 0;
  const counting = (model: IModelProto) => {
    inferences++;
    return inferShapes(model);
  };
  const cacheDir = join(dir, 'cache');

  const miss = await prepareBackbone(source, { download: false, cacheDir, inferShapes: counting });
  t.equal(miss.extractor.reused, false);
  t.equal(inferences, 1, 'one shape inference on a miss (embedding discovery, inspection and MACs share it)');
  t.equal(miss.extractor.facts.macsPerImage, 6932, 'MACs per image from the symbolic-batch shapes');
  t.equal(miss.extractor.dim, 4);
  t.match(
    miss.spec.preprocess,
    { layout: 'NCHW', width: 8, height: 8 },
    'preprocessing settled against the input dims',
  );
  t.equal(miss.resolved.path, source);

  const hit = await prepareBackbone(source, { download: false, cacheDir, inferShapes: counting });
  t.equal(hit.extractor.reused, true);
  t.equal(inferences, 2, 'one more on a hit (the fingerprint needs the embedding)');
  t.equal(hit.extractor.fingerprint, miss.extractor.fingerprint);
});
