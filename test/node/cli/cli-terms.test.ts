import t from 'tap';
import { inCliTerms } from '../../../src/node/cli/common.js';
import { findEmbedding } from '../../../src/core/models/embedding.js';
import { model, node, valueInfo } from '../../helpers/onnx-graph.js';

t.test('the CLI names the flag where a library error names an option', async (t) => {
  t.equal(
    inCliTerms('port 80 on 127.0.0.1 is already in use: pass another `port` (0 picks any free one)'),
    'port 80 on 127.0.0.1 is already in use: pass --port <another> (or --port 0 for any free one)',
  );
  t.equal(
    inCliTerms(
      "cannot add examples to a linear head without retraining; train a prototype head (`type: 'prototype'`) for that",
    ),
    'cannot add examples to a linear head without retraining; train a prototype head (--head prototype) for that',
  );
  t.match(
    inCliTerms(
      'the head was trained on backbone a (sha256 0123…), but the backbone given is b (sha256 4567…): use backbone a or retrain the head',
    ),
    /: pass --backbone a or retrain the head$/,
  );
  t.equal(inCliTerms('head.json: file not found'), 'head.json: file not found', 'other messages pass unchanged');
});

t.test('a library error about the embedding speaks of the option, the CLI of --embedding', async (t) => {
  const m = model({
    inputs: [valueInfo('x', ['N', 3, 8, 8])],
    outputs: [valueInfo('y', ['N', 3, 8, 8])],
    nodes: [node('Relu', ['x'], ['y'])],
  });
  let message = '';
  try {
    findEmbedding(m, { file: 'odd.onnx' });
  } catch (error) {
    message = (error as Error).message;
  }
  t.match(message, /the `embeddingTensor` option/);
  t.notMatch(message, /--/);
  t.match(inCliTerms(message), /--embedding <tensor>/);
});
