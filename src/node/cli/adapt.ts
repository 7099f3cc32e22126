import { existsSync, statSync } from 'node:fs';
import { loadHead, saveHead } from '../head-io.js';
import { adaptHead } from '../../core/heads/adapt.js';
import type { WeightDType } from '../../core/formats/head-file.js';
import { EdgetlError } from '../../core/util/errors.js';
import { type Command, parseCommandLine, printJson } from './common.js';
import { backboneFlagsHelp } from './embed.js';
import { driftJson } from './drift.js';
import { LazyBackbone, backboneRunOptions, fieldEmbeddings, printHeadWarnings, shortPath } from './head-shared.js';

const adaptOptions = { ...backboneRunOptions, head: { type: 'string' }, dtype: { type: 'string' } } as const;

export const adaptCommand: Command = {
  name: 'adapt',
  summary: 'adapt a head to field photos without labels (re-estimated feature statistics); kept only if it helps',
  help: `Usage: edgetl adapt <unlabeled dir|embeddings-prefix> --head head.json --out adapted.json [--json]

Re-estimates the head's feature statistics from photos taken in the field (no labels needed), as AdaBN and CORAL
do: each embedding dimension's mean and spread over the field photos is mapped onto the training photos', before
the head's normalization, classifier and outlier memory see it. The weights do not change.

It is kept only where it helps: the statistics are fitted on half of the field photos and judged on the other
half; unless that half comes closer to the training data (lower mean outlier score, no more over the threshold),
the head is written unchanged and the report says so. Needs at least 16 field photos; use photos of the classes the
head knows, in the field's conditions (light, camera, compression). Writes atomically; --out may equal --head.

With --json, stdout is one object:
  {"head","out","adapted","reason","rows","heldOutBefore":{drift},"heldOutAfter":{drift}}   (drift as in \`edgetl drift --json\`)

${backboneFlagsHelp}
`,
  async run(argv) {
    const { values, positionals } = parseCommandLine(argv, adaptOptions);
    if (positionals.length !== 1)
      throw new EdgetlError(
        'usage',
        positionals.length === 0
          ? 'missing <unlabeled dir|embeddings-prefix>: the field photos to adapt to'
          : `expected one folder or embedding set, got ${positionals.length}`,
      );
    if (!values.head) throw new EdgetlError('usage', 'missing --head <head.json>');
    if (!values.out) throw new EdgetlError('usage', 'missing --out <adapted.json>: where to write the adapted head');
    if (existsSync(values.out) && statSync(values.out).isDirectory())
      throw new EdgetlError(
        'usage',
        `--out ${values.out} is a folder; give a file name such as ${values.out}/head.json`,
      );
    const dtype = (values.dtype ?? 'auto') as WeightDType | 'auto';
    if (dtype !== 'auto' && dtype !== 'float16' && dtype !== 'float32')
      throw new EdgetlError('usage', `--dtype must be auto, float16 or float32, got "${values.dtype}"`);
    const head = await loadHead(values.head);
    printHeadWarnings(head);
    const backbone = new LazyBackbone(values, head.backbone.id);
    try {
      const field = await fieldEmbeddings(positionals[0]!, head, backbone, values, 'field photos');
      const result = adaptHead(head, field.embeddings, field.rows);
      const bytes = await saveHead(result.head, values.out, { dtype });
      if (values.json) {
        printJson({
          head: values.head,
          out: values.out,
          adapted: result.adapted,
          reason: result.reason,
          rows: field.rows,
          heldOutBefore: driftJson(result.heldOutBefore),
          heldOutAfter: driftJson(result.heldOutAfter),
          headBytes: bytes,
          skipped: field.skipped,
        });
        return 0;
      }
      process.stdout.write(
        [
          `${result.adapted ? 'Adapted' : 'Did not adapt'} ${shortPath(values.head)} to ${field.rows} field photo(s) from ${shortPath(positionals[0]!)}: ${result.reason}`,
          `  held-out half before  ${result.heldOutBefore.summary}`,
          `  held-out half after   ${result.heldOutAfter.summary}`,
          `  wrote ${shortPath(values.out)} (${(bytes / 1024).toFixed(1)} KiB)`,
        ].join('\n') + '\n',
      );
      return 0;
    } finally {
      await backbone.close();
    }
  },
};
