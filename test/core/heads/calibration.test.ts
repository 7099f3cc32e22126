import t from 'tap';
import { fitTemperature, rejectionThreshold } from '../../../src/core/heads/calibration.js';
import { expectedCalibrationError } from '../../../src/core/heads/metrics.js';
import { softmaxRows } from '../../../src/core/heads/softmax.js';
import { Random } from '../../../src/core/heads/random.js';

/** Rows whose labels are drawn from softmax(logits): perfectly calibrated at temperature 1. */
function calibratedSample(rows: number, classes: number, seed: number): { logits: Float32Array; targets: Int32Array } {
  const random = new Random(seed);
  const logits = Float32Array.from({ length: rows * classes }, () => random.normal() * 1.5);
  const probabilities = softmaxRows(Float32Array.from(logits), rows, classes);
  const targets = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let u = random.next();
    let c = 0;
    while (c < classes - 1 && u > probabilities[r * classes + c]) u -= probabilities[r * classes + c++];
    targets[r] = c;
  }
  return { logits, targets };
}

t.test('temperature scaling undoes overconfidence and lowers ECE', async (t) => {
  const { logits, targets } = calibratedSample(4000, 5, 1);
  const overconfident = Float32Array.from(logits, (v) => v * 4);
  const temperature = fitTemperature(overconfident, targets, 5);
  t.ok(Math.abs(temperature - 4) < 0.4, `recovers T ~ 4, got ${temperature}`);
  const before = expectedCalibrationError(softmaxRows(Float32Array.from(overconfident), 4000, 5), targets, 5);
  const after = expectedCalibrationError(
    softmaxRows(Float32Array.from(overconfident), 4000, 5, temperature),
    targets,
    5,
  );
  t.ok(after < before / 3, `ECE ${before.toFixed(3)} -> ${after.toFixed(3)}`);
  const underconfident = Float32Array.from(logits, (v) => v / 3);
  const sharpen = fitTemperature(underconfident, targets, 5);
  t.ok(Math.abs(sharpen - 1 / 3) < 0.05, `underconfident logits get T ~ 1/3, got ${sharpen}`);
});

t.test('when every held-out row is right, the temperature stays finite (Platt-style soft targets)', async (t) => {
  const logits = Float32Array.from([5, 0, 0, 6, 4, 0]);
  const temperature = fitTemperature(logits, Int32Array.from([0, 1]), 2);
  t.ok(temperature > 0.1, `T ${temperature} not driven to the floor`);
  const p = softmaxRows(Float32Array.from(logits), 2, 2, temperature);
  t.ok(p[0] < 0.99, `top probability ${p[0]} stays below certainty`);
});

t.test('rejection threshold rejects about the requested share of held-out and of fresh rows', async (t) => {
  const heldOut = calibratedSample(2000, 4, 2);
  const threshold = rejectionThreshold(heldOut.logits, 2000, 4, 1, 0.05);
  const rejectedShare = (logits: Float32Array, rows: number) => {
    const p = softmaxRows(Float32Array.from(logits), rows, 4);
    let rejected = 0;
    for (let r = 0; r < rows; r++) if (Math.max(...p.subarray(r * 4, r * 4 + 4)) < threshold) rejected++;
    return rejected / rows;
  };
  t.ok(
    Math.abs(rejectedShare(heldOut.logits, 2000) - 0.05) <= 0.001,
    `held-out: ${rejectedShare(heldOut.logits, 2000)}`,
  );
  const fresh = calibratedSample(2000, 4, 3);
  t.ok(Math.abs(rejectedShare(fresh.logits, 2000) - 0.05) < 0.02, `fresh rows: ${rejectedShare(fresh.logits, 2000)}`);
  t.equal(rejectionThreshold(heldOut.logits, 2000, 4, 1, 0), 0, 'rate 0 never rejects');
});
