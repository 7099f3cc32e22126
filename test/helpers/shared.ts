import { existsSync } from 'node:fs';
import { resolve, join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (tests run with cwd anywhere). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Folder with the real backbones: EDGETL_MODEL_PATH (first entry) or ../shared/models beside the checkout. */
export function sharedModelsDir(): string | undefined {
  const fromEnv = process.env.EDGETL_MODEL_PATH?.split(':').find((p) => p && existsSync(p));
  if (fromEnv) return resolve(fromEnv);
  const beside = resolve(repoRoot, '..', 'shared', 'models');
  return existsSync(beside) ? beside : undefined;
}

/** ../shared (datasets, images): EDGETL_DATA_PATH or the folder beside the checkout. */
export function sharedDataDir(): string | undefined {
  const fromEnv = process.env.EDGETL_DATA_PATH;
  if (fromEnv && existsSync(fromEnv)) return resolve(fromEnv);
  const beside = resolve(repoRoot, '..', 'shared');
  return existsSync(join(beside, 'datasets')) ? beside : undefined;
}

/** The package's own models/ folder: the default backbone ships there, so a fresh clone has it. */
export const bundledModelsDir = join(repoRoot, 'models');

/**
 * Path to a model file for a test: from the shared models (EDGETL_MODEL_PATH or ../shared/models), else, for the
 * bundled default backbone, from the repository's models/ folder; or undefined with a reason for `t.skip`/`{ skip }`.
 * Usage: const m = sharedModel('mobilenetv2-12-int8.onnx'); t.test('...', { skip: m.skip }, ...)
 */
export function sharedModel(file: string): { path: string; skip: false } | { path: undefined; skip: string } {
  const dir = sharedModelsDir();
  const path = dir ? join(dir, file) : undefined;
  if (path && existsSync(path)) return { path, skip: false };
  const bundled = join(bundledModelsDir, file);
  if (existsSync(bundled)) return { path: bundled, skip: false };
  return {
    path: undefined,
    skip: `needs ${file}: set EDGETL_MODEL_PATH to ../shared/models (looked in ${dir ?? 'nowhere'})`,
  };
}

export function sharedPath(relative: string): { path: string; skip: false } | { path: undefined; skip: string } {
  const dir = sharedDataDir();
  const path = dir ? join(dir, relative) : undefined;
  if (path && existsSync(path)) return { path, skip: false };
  return { path: undefined, skip: `needs ../shared/${relative}: set EDGETL_DATA_PATH to the shared folder` };
}

export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

// Tests that resolve backbones by catalog id go through the model search path, as users do: point it at the shared
// models when the caller did not, so `npx tap` beside ../shared behaves as CI (which sets EDGETL_MODEL_PATH) does.
if (!process.env.EDGETL_MODEL_PATH) {
  const dir = sharedModelsDir();
  if (dir) process.env.EDGETL_MODEL_PATH = dir;
}

/**
 * Points Vulkan at SwiftShader (unless the caller chose a driver). Call it before onnxruntime creates its WebGPU
 * device, which it does once per process: test files call it first thing, before importing onnxruntime.
 */
export function useSwiftShader(): void {
  if (!process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES && existsSync(SWIFTSHADER_ICD)) {
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  }
}

/** Why a SwiftShader WebGPU test cannot run here, or false. */
export function swiftShaderSkipReason(vulkanLoader: string | undefined): string | false {
  if (!existsSync(SWIFTSHADER_ICD)) return `needs ${SWIFTSHADER_ICD} (Debian package chromium)`;
  if (!vulkanLoader) return 'needs a Vulkan loader (Debian package libvulkan1)';
  return false;
}

/**
 * The smallest real backbone at hand, for tests that need any model but no particular one (servers, pages,
 * workers): the shared fp32 MobileNet V1 0.25 (256-d) when present, else the bundled int8 MobileNetV2 (1280-d), so
 * those tests run on a fresh clone too.
 */
export function smallBackbone(): { path: string; embeddingDim: number } {
  const fp32 = sharedModel('mobilenet-v1-0.25-224.fp32.onnx');
  if (fp32.path) return { path: fp32.path, embeddingDim: 256 };
  return { path: join(bundledModelsDir, 'mobilenetv2-12-int8.onnx'), embeddingDim: 1280 };
}
