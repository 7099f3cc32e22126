import t from 'tap';
import { mirrorRgb } from '../../../src/node/embed/augment.js';

t.test('mirrorRgb mirrors each row of packed RGB pixels, keeping channel order', async (t) => {
  // 3 x 2 image: pixel (x, y) = [10x + y, 100 + x, 200 + y]
  const width = 3;
  const height = 2;
  const pixels = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) pixels.set([10 * x + y, 100 + x, 200 + y], (y * width + x) * 3);
  const mirrored = mirrorRgb(pixels, width, height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const source = width - 1 - x;
      t.same(
        [...mirrored.subarray((y * width + x) * 3, (y * width + x) * 3 + 3)],
        [10 * source + y, 100 + source, 200 + y],
        `(${x}, ${y})`,
      );
    }
  }
  t.same(mirrorRgb(mirrored, width, height), pixels, 'twice is the identity');
});
