/**
 * Open-set figures on real data (MobileNetV2-int8): a head trained with default options on hymenoptera rejects
 * photos of other datasets, keeps its own, and `adapt` brings a shifted copy of its photos back. Skipped with a
 * message when ../shared is absent. Figures are printed as comments (and committed in
 * bench/results/2026-12-01/open-set.md).
 */
import t from 'tap';
import { mkdtemp, mkdir, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { Backbone } from '../../../src/node/embed/backbone.js';
import { embedFolder } from '../../../src/node/embed/embed-folder.js';
import { trainHead } from '../../../src/node/train-head.js';
import { adaptHead } from '../../../src/core/heads/adapt.js';
import { driftReport } from '../../../src/core/heads/drift.js';
import type { Head } from '../../../src/core/heads/head.js';
import { sharedModel, sharedPath } from '../../helpers/shared.js';
import { outlierAuroc } from '../../../src/core/heads/metrics.js';

const model = sharedModel('mobilenetv2-12-int8.onnx');
const hymenoptera = sharedPath('datasets/hymenoptera');
const flowers = sharedPath('datasets/flowers5/val');
const images = sharedPath('images');
const skip = model.skip || hymenoptera.skip || flowers.skip || images.skip;

function figures(head: Head, embeddings: Float32Array, rows: number, labels?: string[]) {
  const predictions = head.predictMany(embeddings, rows);
  const accepted = predictions.filter((p) => !p.rejected);
  return {
    scores: Float32Array.from(predictions, (p) => p.outlierScore!),
    rejected: 1 - accepted.length / rows,
    accepted: accepted.length / rows,
    closedSetAccuracy: labels ? predictions.filter((p, i) => p.closest === labels[i]).length / rows : NaN,
    acceptedAccuracy: labels
      ? predictions.filter((p, i) => !p.rejected && p.closest === labels[i]).length / Math.max(1, accepted.length)
      : NaN,
  };
}

/** A shifted copy of a class folder tree: darker, blurred, heavily recompressed (what a poor field camera gives). */
async function shiftedCopy(from: string, to: string): Promise<void> {
  for (const label of await readdir(from)) {
    await mkdir(join(to, label), { recursive: true });
    for (const file of await readdir(join(from, label))) {
      await sharp(join(from, label, file))
        .rotate()
        .modulate({ brightness: 0.55 })
        .blur(2.5)
        .jpeg({ quality: 12 })
        .toFile(join(to, label, file.replace(/\.\w+$/, '.jpg')));
    }
  }
}

t.test(
  'a default hymenoptera head rejects other datasets, keeps its own photos, and adapt helps on a shifted copy',
  { skip },
  async (t) => {
    const backbone = await Backbone.load(model.path!, { ep: 'cpu' });
    const scratch = await mkdtemp(join(tmpdir(), 'edgetl-open-set-'));
    t.teardown(async () => {
      await backbone.close();
      await rm(scratch, { recursive: true, force: true });
    });
    const train = await embedFolder(backbone, join(hymenoptera.path!, 'train'));
    const val = await embedFolder(backbone, join(hymenoptera.path!, 'val'));
    const flowerSet = await embedFolder(backbone, flowers.path!);
    const single = await embedFolder(backbone, images.path!);
    t.ok(single.items.length >= 5, `enough single photos to measure (${single.items.length})`);
    const ref = {
      id: backbone.id,
      sha256: backbone.sha256,
      embeddingDim: backbone.embeddingDim,
      preprocess: backbone.preprocess,
    };
    const head = await trainHead(
      train.embeddings,
      train.items.map((i) => i.label!),
      { backbone: ref },
    );

    const own = figures(
      head,
      val.embeddings,
      val.items.length,
      val.items.map((i) => i.label!),
    );
    const flowerFigures = figures(head, flowerSet.embeddings, flowerSet.items.length);
    const singleFigures = figures(head, single.embeddings, single.items.length);
    const flowerAuroc = outlierAuroc(own.scores, flowerFigures.scores);
    const singleAuroc = outlierAuroc(own.scores, singleFigures.scores);
    t.comment(
      `own val: ${(100 * own.rejected).toFixed(1)}% rejected, closed-set accuracy ${(100 * own.closedSetAccuracy).toFixed(1)}%, on the accepted ${(100 * own.acceptedAccuracy).toFixed(1)}%`,
    );
    t.comment(
      `single photos (well separated): AUROC ${singleAuroc.toFixed(4)}, accepted ${(100 * singleFigures.accepted).toFixed(1)}%`,
    );
    t.comment(
      `flowers5 val (hard: bees are photographed on flowers): AUROC ${flowerAuroc.toFixed(4)}, accepted ${(100 * flowerFigures.accepted).toFixed(1)}%`,
    );
    t.ok(singleAuroc >= 0.98, `well-separated pair (single off-topic photos): AUROC ${singleAuroc.toFixed(4)} >= 0.98`);
    t.ok(
      singleFigures.accepted <= 0.1,
      `at the head's own threshold it accepts ${(100 * singleFigures.accepted).toFixed(1)}% <= 10% of them`,
    );
    t.ok(flowerAuroc >= 0.95, `hard pair (flowers5): AUROC ${flowerAuroc.toFixed(4)} >= 0.95`);
    t.ok(flowerFigures.accepted <= 0.25, `it accepts ${(100 * flowerFigures.accepted).toFixed(1)}% <= 25% of flowers`);
    // measured 92.8% kept by default (outlier cut 3% + low-confidence cut 2% out of fold): hymenoptera val lies a
    // little farther from train than train's own folds
    t.ok(own.rejected <= 0.08, `it keeps ${(100 * (1 - own.rejected)).toFixed(1)}% >= 92% of its own val photos`);
    t.ok(
      own.acceptedAccuracy >= own.closedSetAccuracy,
      `accuracy on the accepted ${(100 * own.acceptedAccuracy).toFixed(2)}% is not below closed-set ${(100 * own.closedSetAccuracy).toFixed(2)}%`,
    );
    t.ok(
      driftReport(head, flowerSet.embeddings, flowerSet.items.length)!.drifted,
      'a batch of flowers is reported as drift',
    );
    t.notOk(driftReport(head, val.embeddings, val.items.length)!.drifted, 'its own val photos are not');

    // field shift: the train photos (unlabeled) and val photos, darker, blurred and recompressed
    await shiftedCopy(join(hymenoptera.path!, 'train'), join(scratch, 'train'));
    await shiftedCopy(join(hymenoptera.path!, 'val'), join(scratch, 'val'));
    const fieldTrain = await embedFolder(backbone, join(scratch, 'train'), { useCache: false });
    const fieldVal = await embedFolder(backbone, join(scratch, 'val'), { useCache: false });
    const fieldLabels = fieldVal.items.map((i) => i.label!);
    const before = figures(head, fieldVal.embeddings, fieldVal.items.length, fieldLabels);
    const result = adaptHead(head, fieldTrain.embeddings, fieldTrain.items.length);
    const after = figures(result.head, fieldVal.embeddings, fieldVal.items.length, fieldLabels);
    const afterFlowers = figures(result.head, flowerSet.embeddings, flowerSet.items.length);
    t.comment(
      `shifted val before adapt: ${(100 * before.rejected).toFixed(1)}% rejected, closed-set accuracy ${(100 * before.closedSetAccuracy).toFixed(1)}%`,
    );
    t.comment(
      `shifted val after adapt (${result.adapted ? 'kept' : 'not kept'}: ${result.reason}): ${(100 * after.rejected).toFixed(1)}% rejected, closed-set accuracy ${(100 * after.closedSetAccuracy).toFixed(1)}%; flowers accepted ${(100 * afterFlowers.accepted).toFixed(1)}%`,
    );
    t.ok(
      before.rejected > 2 * own.rejected,
      `the shift is real: ${(100 * before.rejected).toFixed(1)}% of shifted val photos rejected`,
    );
    t.ok(result.adapted, 'adapt keeps the re-estimated statistics for this shift');
    t.ok(
      after.rejected < before.rejected,
      `adapting to unlabeled field photos rejects fewer shifted own photos (${(100 * after.rejected).toFixed(1)}% < ${(100 * before.rejected).toFixed(1)}%)`,
    );
    t.ok(after.closedSetAccuracy >= before.closedSetAccuracy - 0.02, 'without losing closed-set accuracy');
    const same = adaptHead(head, train.embeddings, train.items.length);
    t.comment(`adapting to the training photos themselves: ${same.adapted ? 'kept' : 'not kept'} (${same.reason})`);
  },
);
