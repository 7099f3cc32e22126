/**
 * Shared model files that are test data, not products: the product catalog does not list them, so the tests state
 * how each was trained. `describedSharedModel` hands out a private copy beside a sidecar with that preprocessing,
 * which every runtime path (Backbone.load, the kiosk server, the browser) then reads as a user's own model would.
 */
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { IMAGENET_224, type PreprocessSpec } from '../../src/core/preprocess/spec.js';
import { sharedModel } from './shared.js';

export const TEST_MODEL_PREPROCESSING: Record<string, PreprocessSpec> = {
  // Keras MobileNet V1 0.25: TF "inception" scaling x/127.5 - 1 after the usual 256 -> 224 center crop.
  'mobilenet-v1-0.25-224.fp32.onnx': { ...IMAGENET_224, scale: 1 / 127.5, mean: [1, 1, 1], std: [1, 1, 1] },
  // MLPerf Tiny ResNet8 (CIFAR-10): 32x32 pixels as raw 0..255 floats.
  'resnet8-cifar10.fp32.onnx': {
    layout: 'NCHW',
    width: 32,
    height: 32,
    resize: 'stretch',
    resizeTo: 32,
    crop: 'none',
    channelOrder: 'RGB',
    scale: 1,
    mean: [0, 0, 0],
    std: [1, 1, 1],
  },
};

/** A copy of a shared test model with a sidecar stating its preprocessing, or the skip reason. */
export function describedSharedModel(
  file: keyof typeof TEST_MODEL_PREPROCESSING & string,
): { path: string; skip: false } | { path: undefined; skip: string } {
  const shared = sharedModel(file);
  if (shared.path === undefined) return shared;
  const preprocess = TEST_MODEL_PREPROCESSING[file];
  if (!preprocess) throw new Error(`no stated preprocessing for ${file}`);
  const dir = mkdtempSync(join(tmpdir(), 'edgetl-test-model-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, basename(file));
  copyFileSync(shared.path, path);
  writeFileSync(join(dir, basename(file).replace(/\.onnx$/, '.edgetl.json')), JSON.stringify({ preprocess }));
  return { path, skip: false };
}
