/**
 * The real EfficientNet-B0 (ImageNet weights converted from TF.js, NHWC input) is not in the catalog: it is found by
 * name on the model search path, and its sidecar efficientnet-b0-imagenet.nhwc.fp32.edgetl.json sets the
 * preprocessing (x/255, no mean/std: the graph normalizes itself). Pins that the sidecar is honored end to end.
 */
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import ort from 'onnxruntime-node';
import { Backbone } from '../../../src/node/embed/backbone.js';
import { imageToTensor } from '../../../src/node/preprocess/node-image.js';
import { tensorDims, tensorElementsPerImage } from '../../../src/core/preprocess/tensor.js';
import { encodeOnnxModel, parseOnnxModel } from '../../../src/core/models/onnx-model.js';
import { findEmbedding } from '../../../src/core/models/embedding.js';
import { valueInfo } from '../../helpers/onnx-graph.js';
import { sharedModel, sharedPath } from '../../helpers/shared.js';

const FILE = 'efficientnet-b0-imagenet.nhwc.fp32';
const model = sharedModel(`${FILE}.onnx`);
const sidecar = sharedModel(`${FILE}.edgetl.json`);
const dog = sharedPath('images/dog.jpg');

t.test(
  'EfficientNet-B0 (NHWC) by name: preprocessing from its sidecar, 1280-d embedding of the pooled features',
  { skip: model.skip || sidecar.skip },
  async (t) => {
    const cacheDir = await mkdtemp(join(tmpdir(), 'edgetl-effnet-'));
    t.teardown(() => rm(cacheDir, { recursive: true, force: true }));
    const backbone = await Backbone.load(FILE, { ep: 'cpu', cache: false, cacheDir });
    t.teardown(() => backbone.close());
    t.equal(backbone.resolved.entry, undefined, 'not a catalog model');
    t.equal(backbone.modelPath, model.path);
    t.match(backbone.preprocess, {
      layout: 'NHWC',
      width: 224,
      height: 224,
      channelOrder: 'RGB',
      mean: [0, 0, 0],
      std: [1, 1, 1],
    });
    t.ok(Math.abs(backbone.preprocess.scale - 1 / 255) < 1e-12, `scale ${backbone.preprocess.scale} is 1/255`);
    t.match(backbone.specNotes.join('\n'), /sidecar .*efficientnet-b0-imagenet\.nhwc\.fp32\.edgetl\.json/);
    t.equal(backbone.embeddingDim, 1280);

    t.test(
      "its embedding is the graph's top_pool/Mean, and the graph recognises a dog",
      { skip: dog.skip },
      async (t) => {
        const embedding = await backbone.embed(dog.path!);
        const spec = backbone.preprocess;
        const input = new Float32Array(tensorElementsPerImage(spec));
        await imageToTensor(dog.path!, spec, { out: input });
        const source = parseOnnxModel(readFileSync(model.path!));
        const found = findEmbedding(source);
        t.match(found.tensor, /top_pool\/Mean/, `discovered embedding tensor ${found.tensor}`);
        t.equal(found.dim, 1280);
        source.graph!.output!.push(valueInfo(found.tensor, undefined));
        const session = await ort.InferenceSession.create(encodeOnnxModel(source));
        t.teardown(() => session.release());
        const out = await session.run({
          [session.inputNames[0]!]: new ort.Tensor('float32', input, tensorDims(spec, 1)),
        });
        const pooled = out[found.tensor]!.data as Float32Array;
        t.equal(pooled.length, 1280);
        let maxDiff = 0;
        for (let i = 0; i < 1280; i++) maxDiff = Math.max(maxDiff, Math.abs(pooled[i]! - embedding[i]!));
        t.ok(maxDiff < 1e-5, `max |embedding - top_pool/Mean| = ${maxDiff}`);
        const probs = out[session.outputNames.find((n) => n !== found.tensor)!]!.data as Float32Array;
        const top = probs.indexOf(Math.max(...probs));
        // ImageNet classes 151-268 are dog breeds; with x/255 NHWC input (the sidecar) the model sees the dog.
        t.ok(top >= 151 && top <= 268, `top-1 ImageNet class ${top} (p=${probs[top]!.toFixed(3)}) is a dog breed`);
      },
    );
  },
);
