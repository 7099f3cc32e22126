// Fine-tuning the last block end to end on a tiny generated backbone: the saved head, loaded in Node, predicts
// through the adapted ONNX graph exactly what the training-time forward pass on cut activations predicts.
import t from 'tap';
import { writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Backbone } from '../../src/node/embed/backbone.js';
import { trainHead } from '../../src/node/train-head.js';
import { fineTuneHead } from '../../src/node/fine-tune.js';
import { saveHead, loadHead } from '../../src/node/head-io.js';
import { Classifier } from '../../src/node/classifier.js';
import { blockForward, headLogits } from '../../src/core/heads/last-block.js';
import { jsDenseMath } from '../../src/core/heads/dense-math.js';
import { cutSurgery } from '../../src/core/models/last-block-graph.js';
import { softmaxRows } from '../../src/core/heads/softmax.js';
import { parseHeadFile } from '../../src/core/formats/head-file.js';
import { pseudoRandom } from '../helpers/onnx-graph.js';
import { stripeWorkspace as workspace } from '../core/models/tiny-last-block.js';
import { tinyTorchvisionLike } from '../core/models/tiny-models.js';
import onnxProto from 'onnx-proto';

t.test(
  'the saved fine-tuned head predicts in Node (adapted ONNX graph) what training-time evaluation predicts',
  async (t) => {
    const ws = await workspace(t);
    const backbone = await Backbone.load(ws.model, { ep: 'cpu', cacheDir: ws.cacheDir });
    t.teardown(() => backbone.close());
    const embedded = await backbone.embedMany(ws.paths, { strict: true });
    const ref = {
      id: backbone.id,
      sha256: backbone.sha256,
      embeddingDim: backbone.embeddingDim,
      preprocess: backbone.preprocess,
    };
    const frozen = await trainHead(embedded.embeddings, ws.labels, { backbone: ref, folds: 2 });
    const { head, report } = await fineTuneHead({
      backbone,
      loadOptions: { ep: 'cpu', cacheDir: ws.cacheDir },
      paths: ws.paths,
      labels: ws.labels,
      frozen,
      flip: true,
      epochs: 3,
      folds: 2,
      blockLearningRate: 1e-2,
      headLearningRate: 1e-2,
      keepFineTuned: true,
      memoryBytes: 10 * 8 * 8 * 8 * 4, // 10 rows in memory, the other 30 spill to disk
    });
    t.equal(report.outcome, 'fine-tuned');
    t.equal(report.rows, 40, 'every image and its flipped view');
    t.ok(report.memory && report.memory.spilledBytes > 0, 'rows beyond the memory budget were spilled');
    t.ok(head.adaptedBlock, 'the head carries the adapted block');
    t.equal(head.adaptedBlock!.cutTensor, 'stem_relu');
    t.notSame(
      Array.from(head.adaptedBlock!.weight),
      Array.from(pseudoRandom(48, 23), (v) => Math.fround(v * 0.6)),
      'the block weights changed',
    );

    const file = join(ws.dir, 'head.json');
    await saveHead(head, file);
    const text = await readFile(file, 'utf8');
    const content = parseHeadFile(text);
    t.equal(content.adaptedBlock?.cutTensor, 'stem_relu', 'the file names the cut tensor');
    t.same(content.tensors.find((x) => x.name === 'adaptedBlock.weight')?.shape, [6, 8]);
    t.match(text, /"name": "adaptedBlock.weight",\s*"dtype": "float16"/, 'adapted weights are stored as float16');

    // training-time evaluation: cut activations -> the block forward pass -> the head, in TypeScript
    const cut = await Backbone.load(ws.model, { ep: 'cpu', cacheDir: ws.cacheDir, surgery: cutSurgery(64) });
    t.teardown(() => cut.close());
    const activations = await cut.embedMany(ws.paths, { strict: true });
    const block = head.adaptedBlock!;
    const { pooled } = await blockForward(
      { weight: block.weight, bias: block.bias, inputs: 8, outputs: 6, activation: block.activation },
      activations.embeddings,
      ws.paths.length,
      64,
      jsDenseMath,
    );
    const normalization = head.normalization as { kind: 'standardize'; mean: Float32Array; std: Float32Array };
    const weights = head.weights as { weight: Float32Array; bias: Float32Array };
    const { logits } = headLogits(
      { mean: normalization.mean, std: normalization.std, weight: weights.weight, bias: weights.bias },
      pooled,
      ws.paths.length,
      6,
      2,
    );
    const expected = softmaxRows(logits, ws.paths.length, 2, head.temperature);

    const classifier = await Classifier.load({
      backbone: ws.model,
      head: await loadHead(file),
      ep: 'cpu',
      cacheDir: ws.cacheDir,
    });
    t.teardown(() => classifier.close());
    const { predictions } = await classifier.classifyMany(ws.paths, { strict: true, topK: 2 });
    let worst = 0;
    predictions.forEach((p, i) => {
      const want = expected[i * 2 + 1] > expected[i * 2] ? 1 : 0;
      t.equal(p.index, want, `image ${i}: same class`);
      worst = Math.max(worst, Math.abs(p.score - expected[i * 2 + p.index]));
    });
    t.ok(worst < 1e-4, `probabilities agree within 1e-4 (worst ${worst.toExponential(2)})`);

    // a plain backbone is refused for an adapted head
    t.rejects(Classifier.load({ backbone, head: await loadHead(file) }), { code: 'head-backbone-mismatch' });
  },
);

t.test('a backbone without a supported last block keeps the frozen head and says why', async (t) => {
  const ws = await workspace(t);
  const model = join(ws.dir, 'plain.onnx');
  await writeFile(model, onnxProto.onnx.ModelProto.encode(tinyTorchvisionLike('N', { size: 16 })).finish());
  const backbone = await Backbone.load(model, { ep: 'cpu', cacheDir: ws.cacheDir });
  t.teardown(() => backbone.close());
  const embedded = await backbone.embedMany(ws.paths, { strict: true });
  const frozen = await trainHead(embedded.embeddings, ws.labels, {
    backbone: {
      id: backbone.id,
      sha256: backbone.sha256,
      embeddingDim: backbone.embeddingDim,
      preprocess: backbone.preprocess,
    },
    folds: 2,
  });
  const { head, report } = await fineTuneHead({
    backbone,
    paths: ws.paths,
    labels: ws.labels,
    frozen,
    loadOptions: { cacheDir: ws.cacheDir },
  });
  t.equal(head, frozen, 'the frozen head is returned');
  t.equal(report.outcome, 'frozen');
  t.match(report.reason, /not supported for fine-tuning: Conv .* has padding .*the frozen head is kept/);
  t.notOk(head.adaptedBlock);
});
