import t from 'tap';
import { assertHeadFitsBackbone } from '../../../src/core/heads/compatibility.js';

const trainedOn = { id: 'mobilenet', sha256: 'ab'.repeat(32), embeddingDim: 1280 };

t.test('a head fits the backbone it was trained on, whatever the case of the sha256', async (t) => {
  t.doesNotThrow(() => assertHeadFitsBackbone(trainedOn, { ...trainedOn, sha256: trainedOn.sha256.toUpperCase() }));
});

t.test('another backbone is refused in library terms, naming both, with the caller remedy when given', async (t) => {
  const other = { id: 'resnet', sha256: 'cd'.repeat(32), embeddingDim: 2048 };
  t.throws(() => assertHeadFitsBackbone(trainedOn, other, { file: 'h.json', what: 'h.json' }), {
    code: 'head-backbone-mismatch',
    file: 'h.json',
    message:
      /^h\.json was trained on backbone mobilenet \(sha256 abababababab…\), but the backbone given is resnet .*: use backbone mobilenet or retrain the head$/,
  });
  t.notMatch(
    String(
      (() => {
        try {
          assertHeadFitsBackbone(trainedOn, other);
        } catch (e) {
          return (e as Error).message;
        }
      })(),
    ),
    /--/,
    'no command-line flag',
  );
  t.throws(() => assertHeadFitsBackbone(trainedOn, other, { givenAs: 'this page runs', remedy: 'reload' }), {
    message: /this page runs resnet .*: reload$/,
  });
  t.throws(() => assertHeadFitsBackbone(trainedOn, { ...trainedOn, embeddingDim: 512 }), {
    code: 'head-backbone-mismatch',
    message: /expects 1280-d embeddings, but backbone mobilenet gives 512/,
  });
});
