// `edgetl train --fine-tune last-block` and `edgetl eval` of the head it writes, on a tiny generated backbone.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { trainCommand } from '../../../src/node/cli/train.js';
import { evalCommand } from '../../../src/node/cli/eval.js';
import { run } from './head-fixtures.js';
import { stripeWorkspace } from '../../core/models/tiny-last-block.js';

t.test(
  'train --fine-tune last-block reports the decision; eval of the saved head gives the same val accuracy',
  async (t) => {
    const ws = await stripeWorkspace(t, 12);
    const val = await stripeWorkspace(t, 6, 'val', 99);
    const out = join(ws.dir, 'head.json');
    const env = process.env.EDGETL_CACHE_DIR;
    process.env.EDGETL_CACHE_DIR = ws.cacheDir;
    t.teardown(() => {
      if (env === undefined) delete process.env.EDGETL_CACHE_DIR;
      else process.env.EDGETL_CACHE_DIR = env;
    });
    const result = await run(trainCommand, [
      join(ws.dir, 'train'),
      '--val',
      join(val.dir, 'val'),
      '--backbone',
      ws.model,
      '--ep',
      'cpu',
      '--fine-tune',
      'last-block',
      '--fine-tune-epochs',
      '3',
      '--augment',
      'flip',
      '--out',
      out,
      '--json',
    ]);
    t.equal(result.error, undefined, result.error?.message ?? '');
    const summary = JSON.parse(result.stdout.trim());
    t.ok(
      ['fine-tuned', 'frozen'].includes(summary.fineTune.outcome),
      `outcome ${summary.fineTune.outcome}: ${summary.fineTune.reason}`,
    );
    t.equal(summary.fineTune.rows, 48, 'every training image and its flipped view');
    t.type(summary.fineTune.crossValidation.frozenAccuracy, 'number');
    t.type(summary.fineTune.memory.peakRssBytes, 'number', 'memory is reported');
    t.type(summary.fineTune.frozenVal.accuracy, 'number', 'the frozen head is scored on val too');
    const head = JSON.parse(await readFile(out, 'utf8'));
    t.equal(
      'adaptedBlock' in head,
      summary.fineTune.outcome === 'fine-tuned',
      'the file carries the block only when it was kept',
    );

    const evaluated = await run(evalCommand, [
      join(val.dir, 'val'),
      '--head',
      out,
      '--backbone',
      ws.model,
      '--ep',
      'cpu',
      '--json',
    ]);
    t.equal(evaluated.error, undefined, evaluated.error?.message ?? '');
    t.equal(
      JSON.parse(evaluated.stdout.trim()).accuracy,
      summary.val.accuracy,
      'eval gives the val accuracy train reported',
    );

    const readable = await run(trainCommand, [
      join(ws.dir, 'train'),
      '--val',
      join(val.dir, 'val'),
      '--backbone',
      ws.model,
      '--ep',
      'cpu',
      '--fine-tune',
      'last-block',
      '--fine-tune-epochs',
      '2',
      '--out',
      out,
    ]);
    t.equal(readable.error, undefined, readable.error?.message ?? '');
    t.match(
      readable.stdout,
      /fine-tune\s+(last block fine-tuned|frozen head kept): /,
      'the report says which head was kept and why',
    );
    t.match(readable.stdout, /out of fold: frozen [\d.]+%, fine-tuned [\d.]+%/);
    t.match(
      readable.stdout,
      /activation rows; activations [\d.]+ s, training [\d.]+ s; memory: activations \d+ MiB in RAM, \d+ MiB spilled, peak RSS \d+ MiB/,
    );

    const refused = await run(trainCommand, [
      join(ws.dir, 'train'),
      '--backbone',
      ws.model,
      '--fine-tune',
      'last-block',
      '--head',
      'mlp',
      '--out',
      out,
    ]);
    t.match(refused.error?.message ?? '', /--fine-tune last-block trains a linear head/);
  },
);
