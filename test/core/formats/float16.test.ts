import t from 'tap';
import { FLOAT16_MAX, fromFloat16Bits, toFloat16Bits } from '../../../src/core/formats/float16.js';

t.test('exact values encode to their IEEE binary16 bit patterns', async (t) => {
  const cases: [number, number][] = [
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff],
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -15, 0x0200], // a subnormal
    [1 + 2 ** -10, 0x3c01],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
  ];
  for (const [value, bits] of cases) {
    t.equal(toFloat16Bits(value), bits, `${value} -> 0x${bits.toString(16)}`);
    t.equal(fromFloat16Bits(bits), value, `0x${bits.toString(16)} -> ${value}`);
  }
  t.ok(Object.is(fromFloat16Bits(0x8000), -0), 'negative zero survives');
  t.ok(Number.isNaN(fromFloat16Bits(toFloat16Bits(NaN))), 'NaN stays NaN');
});

t.test('rounding is to nearest, ties to even, including into subnormals and overflow', async (t) => {
  // halfway between 1 and 1+2^-10 rounds to the even mantissa (1); just above rounds up
  t.equal(toFloat16Bits(1 + 2 ** -11), 0x3c00);
  t.equal(toFloat16Bits(1 + 3 * 2 ** -11), 0x3c02, '1+3*2^-11 is halfway between odd 0x3c01 and even 0x3c02');
  t.equal(toFloat16Bits(1 + 2 ** -11 + 2 ** -20), 0x3c01);
  // halfway between 0 and the smallest subnormal rounds to 0 (even); above it, to the subnormal
  t.equal(toFloat16Bits(2 ** -25), 0x0000);
  t.equal(toFloat16Bits(2 ** -25 * 1.01), 0x0001);
  t.equal(toFloat16Bits(3 * 2 ** -25), 0x0002, '1.5 subnormal units round to 2 (even)');
  t.equal(toFloat16Bits(2 ** -30), 0x0000, 'far below the range: zero');
  // the largest subnormal rounds up into the smallest normal
  t.equal(toFloat16Bits(2 ** -14 - 2 ** -26), 0x0400);
  // 65520 is halfway to 2^16: ties to even overflows to Infinity; just below stays at FLOAT16_MAX
  t.equal(toFloat16Bits(65520), 0x7c00);
  t.equal(toFloat16Bits(65519), 0x7bff);
  t.equal(fromFloat16Bits(0x7bff), FLOAT16_MAX);
  t.equal(toFloat16Bits(1e6), 0x7c00, 'overflow is Infinity');
});

t.test('every finite float16 round-trips exactly, and random floats land on the nearest float16', async (t) => {
  let mismatches = 0;
  for (let bits = 0; bits < 0x10000; bits++) {
    if ((bits & 0x7c00) === 0x7c00) continue;
    if (toFloat16Bits(fromFloat16Bits(bits)) !== bits) mismatches++;
  }
  t.equal(mismatches, 0, 'all 63488 finite patterns round-trip');
  let worst = 0;
  for (let i = 0; i < 20000; i++) {
    // weights arrive as float32, so test float32 inputs (the conversion reads the float32 bits)
    const value = Math.fround(((Math.sin(i * 12.9898) * 43758.5453) % 1000) * 10 ** ((i % 8) - 7));
    if (value === 0) continue;
    const decoded = fromFloat16Bits(toFloat16Bits(value));
    const spacing = 2 ** Math.max(-24, Math.floor(Math.log2(Math.abs(value))) - 10);
    worst = Math.max(worst, Math.abs(decoded - value) / spacing);
  }
  t.ok(worst <= 0.5 + 1e-9, `error at most half a unit in the last place (worst ${worst})`);
});
