// The optional adaptedBlock section of a head file: round trip, schema, validation errors naming the field.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { trainHead } from '../../../src/core/heads/train.js';
import { Head } from '../../../src/core/heads/head.js';
import { IMAGENET_224 } from '../../../src/core/preprocess/spec.js';
import { checkFormat } from '../../../src/core/formats/format-schemas.js';
import { gaussianClusters } from '../heads/synthetic.js';
import { pseudoRandom } from '../../helpers/onnx-graph.js';

const readJson = (name: string) =>
  JSON.parse(readFileSync(new URL(`../../../src/core/formats/${name}`, import.meta.url), 'utf8'));
const schema = readJson('edgetl-head-v2.schema.json');
const dim = 12;
const backbone = { id: 'tiny-test', sha256: 'cd'.repeat(32), embeddingDim: dim, preprocess: IMAGENET_224 };
const { data, labels } = gaussianClusters({ perClass: [20, 20], dim, separation: 3, seed: 4 });

async function adaptedHead(activation: { kind: 'clip'; min: number; max: number } | { kind: 'swish' }) {
  const frozen = await trainHead(data, labels, { backbone, seed: 1 });
  return new Head({
    labels: frozen.labels,
    backbone,
    weights: frozen.weights,
    normalization: frozen.normalization,
    temperature: frozen.temperature,
    rejection: null,
    training: frozen.training,
    adaptedBlock: {
      kind: 'conv1x1',
      cutTensor: 'cut:0',
      inputChannels: 5,
      outputChannels: dim,
      activation,
      pool: 'mean',
      replaces: 'Conv "x" 5->12',
      weight: pseudoRandom(dim * 5, 3),
      bias: pseudoRandom(dim, 4),
    },
  });
}

t.test('both head schemas take the section from the one fragment', async (t) => {
  const fragment = readJson('edgetl-head-adapted-block.schema.json');
  t.equal(fragment.$id, 'https://edgetl.dev/schemas/edgetl-head-adapted-block.schema.json');
  t.same(schema.properties.adaptedBlock, { $ref: 'edgetl-head-adapted-block.schema.json' });
  t.same(readJson('edgetl-head-v1.schema.json').properties.adaptedBlock, {
    $ref: 'edgetl-head-adapted-block.schema.json',
  });
});

t.test(
  'a head with an adapted block round-trips, schema-valid, with the cut tensor and float16 block weights',
  async (t) => {
    for (const activation of [
      { kind: 'clip', min: 0, max: 6 },
      { kind: 'clip', min: 0, max: Infinity },
      { kind: 'swish' },
    ] as const) {
      const head = await adaptedHead(activation);
      const text = head.serialize();
      const doc = JSON.parse(text);
      t.same(checkFormat('headV2', doc), [], `${JSON.stringify(activation)}: schema-valid`);
      t.equal(doc.adaptedBlock.cutTensor, 'cut:0');
      t.same(
        doc.weights.tensors.find((e: { name: string }) => e.name === 'adaptedBlock.weight'),
        {
          name: 'adaptedBlock.weight',
          dtype: 'float16',
          shape: [dim, 5],
          offset: doc.weights.tensors.find((e: { name: string }) => e.name === 'adaptedBlock.weight').offset,
        },
      );
      const loaded = Head.parse(text);
      t.same(loaded.adaptedBlock?.activation, activation);
      const worst = loaded.adaptedBlock!.weight.reduce(
        (m, v, i) => Math.max(m, Math.abs(v - head.adaptedBlock!.weight[i])),
        0,
      );
      t.ok(worst < 1e-3, `float16 block weights within ${worst}`);
      t.same(Array.from(loaded.adaptedBlock!.bias), Array.from(head.adaptedBlock!.bias), 'the bias is float32, exact');
    }
  },
);

t.test('a head without the section still loads and has no adapted block', async (t) => {
  const frozen = await trainHead(data, labels, { backbone, seed: 1 });
  const doc = JSON.parse(frozen.serialize());
  t.notOk('adaptedBlock' in doc);
  t.equal(Head.parse(JSON.stringify(doc)).adaptedBlock, undefined);
});

t.test('a broken section is refused, naming the field', async (t) => {
  const text = (await adaptedHead({ kind: 'swish' })).serialize();
  const cases: [string, (doc: { adaptedBlock: Record<string, unknown> }) => void, RegExp][] = [
    [
      'outputs differ from the embedding',
      (d) => (d.adaptedBlock.outputChannels = 7),
      /adaptedBlock.outputChannels" is 7 but backbone.embeddingDim is 12/,
    ],
    [
      'unknown activation',
      (d) => (d.adaptedBlock.activation = { kind: 'gelu' }),
      /adaptedBlock.activation.kind" must be one of "swish", "clip", got "gelu"/,
    ],
    ['no cut tensor', (d) => delete d.adaptedBlock.cutTensor, /adaptedBlock.cutTensor" is required but missing/],
    [
      'clip bounds inverted',
      (d) => (d.adaptedBlock.activation = { kind: 'clip', min: 6, max: 0 }),
      /adaptedBlock.activation" clip needs min < max/,
    ],
    [
      'channels change the tensor shape',
      (d) => (d.adaptedBlock.inputChannels = 6),
      /adaptedBlock.weight" is \[12,5\], expected \[12,6\]/,
    ],
  ];
  for (const [what, change, message] of cases) {
    const doc = JSON.parse(text);
    change(doc);
    t.throws(() => Head.parse(JSON.stringify(doc), { file: 'h.json' }), { message }, what);
  }
  const doc = JSON.parse(text);
  delete doc.adaptedBlock;
  t.throws(
    () => Head.parse(JSON.stringify(doc)),
    { message: /"adaptedBlock.weight", which a linear head does not have/ },
    'block tensors without the section are refused',
  );
});
