import { existsSync, statSync } from 'node:fs';
import { exportMergedModel } from '../export-model.js';
import { EdgetlError } from '../../core/util/errors.js';
import { type Command, parseCommandLine, printJson } from './common.js';
import { shortPath } from './head-shared.js';

const exportOptions = {
  backbone: { type: 'string', short: 'b' },
  embedding: { type: 'string' },
  out: { type: 'string', short: 'o' },
  'no-download': { type: 'boolean' },
  json: { type: 'boolean' },
  debug: { type: 'boolean' },
} as const;

export const exportCommand: Command = {
  name: 'export',
  summary: 'write a head and its backbone as one ONNX file (probabilities + embedding) for any onnxruntime',
  help: `Usage: edgetl export <head.json> --out app.onnx [--backbone <id|path>] [--embedding <tensor>] [--json]

Writes one ONNX graph: the backbone cut at its embedding, the head's normalization, the head (linear, MLP or
prototype), its temperature and a softmax. Outputs:
  probabilities  float32 [N, classes]  the head's calibrated probabilities, classes in the head's label order
  embedding      float32 [N, D]        the backbone embedding
Input: the backbone's own image input (preprocessed as the sidecar says). The labels, the preprocessing, the
head's rejection threshold and the edgetl version are in the model's metadata_props (keys edgetl.*), so plain
onnxruntime in any language can run it. Beside it, <name>.edgetl.json (the sidecar edgetl reads):
  edgetl embed photos --backbone app.onnx --embedding probabilities --out probs

Before writing, the merged graph is run once and compared with the head; a disagreement is refused.
The backbone defaults to the one the head names; a backbone whose sha256 differs from the head's is refused.

Options:
  --out, -o <file.onnx>       the merged model (written atomically; the sidecar goes beside it)
  --backbone, -b <id|path>    catalog id or .onnx file (default: the head's backbone)
  --embedding <tensor>        embedding tensor in the backbone (default: as the head's backbone is embedded)
  --no-download               never download a missing catalog model
  --json                      print {"path","sidecar","bytes","labels","outputs","metadata","check"} on stdout
`,
  async run(argv) {
    const { values, positionals } = parseCommandLine(argv, exportOptions);
    if (positionals.length !== 1) {
      throw new EdgetlError(
        'usage',
        positionals.length === 0
          ? 'missing <head.json>: the head to export (see --help)'
          : `expected one head file, got ${positionals.length}: ${positionals.join(' ')}`,
      );
    }
    if (!values.out) throw new EdgetlError('usage', 'missing --out <file.onnx>: where to write the merged model');
    if (/[\\/]$/.test(values.out) || (existsSync(values.out) && statSync(values.out).isDirectory())) {
      throw new EdgetlError(
        'usage',
        `--out ${values.out} is a folder; name the .onnx file to write (e.g. --out app.onnx)`,
      );
    }
    const exported = await exportMergedModel(positionals[0], {
      out: values.out,
      backbone: values.backbone,
      embeddingTensor: values.embedding,
      download: values['no-download'] !== true,
    });
    if (values.json) {
      printJson(exported);
      return 0;
    }
    process.stdout.write(
      [
        `Wrote ${shortPath(exported.path)} (${(exported.bytes / 1e6).toFixed(2)} MB): ${exported.backbone.id} + head ${shortPath(positionals[0])}`,
        `  outputs    ${exported.outputs.map((o) => `${o.name} [${o.dims.join(', ')}]`).join(', ')}`,
        `  labels     ${exported.labels.join(', ')}`,
        `  sidecar    ${shortPath(exported.sidecar)}`,
        `  check      max probability difference to the head ${exported.check.maxDifference.toExponential(1)} on ${exported.check.images} test input(s)`,
        '',
      ].join('\n'),
    );
    return 0;
  },
};
