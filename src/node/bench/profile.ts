import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { EdgetlError, describeError } from '../../core/util/errors.js';
import type { ExecutionProviderName } from '../../core/execution/types.js';
import {
  assertSupportedSchema,
  formatViolations,
  validateJson,
  type JsonSchema,
} from '../../core/bench/json-schema.js';
import { deviceProfilesDir, profileSchemaPath } from './paths.js';

export const PROFILE_FORMAT = 'edgetl-device-profile/1';

export type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';
export type HeadKind = 'linear' | 'mlp' | 'prototype';

export interface DeviceFacts {
  cpu?: string;
  cores?: number;
  isa?: string[];
  memoryGb?: number;
  accelerator?: string;
  acceleratorPeak?: string;
  power?: string;
  references?: string[];
}

export interface ProfileExecution {
  providers: ExecutionProviderName[];
  intraOpThreads?: number;
  interOpThreads?: number;
  graphOptimizationLevel?: GraphOptimizationLevel;
  cudaDeviceId?: number;
  webgpuSoftwareAdapter?: boolean;
}

export interface BackboneSetting {
  id: string;
  batchSizes?: number[];
  intraOpThreads?: number;
  interOpThreads?: number;
  notes?: string;
}

export interface ProfileImages {
  folder?: string;
  limit?: number;
  synthetic?: { count: number; width: number; height: number; format?: 'jpeg' | 'png'; seed?: number };
}

export interface ProfileMeasurement {
  warmupRuns: number;
  minRuns: number;
  minDurationMs: number;
  maxDurationMs?: number;
  seed?: number;
  sessions?: number;
  /**
   * The least noise a run states (fraction): the drift between runs this device class shows that no statistic
   * within one run can see (a shared machine's speed shifting for minutes). Measured, with its source in the profile.
   */
  noiseFloor?: number;
  preprocessImages?: number;
  preprocessMinDurationMs?: number;
}

export interface ProfileEndToEnd {
  enabled?: boolean;
  images?: number;
  repeats?: number;
  batchSizes?: number[];
}

export interface ProfileHeads {
  samples: number;
  dim: number;
  classes: number;
  types: HeadKind[];
  repeats?: number;
  predictions?: number;
  seed?: number;
}

export interface Budget {
  name: string;
  backbone?: string;
  provider?: ExecutionProviderName;
  batch?: number;
  p95LatencyMsPerImage?: number;
  p95LatencyMsPerBatch?: number;
  minImagesPerSecond?: number;
  maxPeakMemoryMb?: number;
  minEndToEndImagesPerSecond?: number;
  minPipelineEfficiency?: number;
  maxHeadTrainSeconds?: number;
  minOutputCosine?: number;
}

export interface AutotuneSpace {
  intraOpThreads?: number[];
  batchSizes?: number[];
  minRuns?: number;
  minDurationMs?: number;
}

export interface TunedChoice {
  backbone: string;
  provider: ExecutionProviderName;
  intraOpThreads: number;
  batch: number;
  imagesPerSecond: number;
  p95LatencyMsPerBatch: number;
  p95LatencyMsPerImage?: number;
  withinBudget: boolean;
}

/** A device profile as stored in device-profiles/<name>.json (schema: device-profiles/profile.schema.json). */
export interface DeviceProfile {
  $schema?: string;
  format: typeof PROFILE_FORMAT;
  name: string;
  deviceClass: string;
  description: string;
  source: string;
  notes?: string;
  device?: DeviceFacts;
  runtime?: 'node' | 'browser';
  purpose: 'performance' | 'correctness';
  execution: ProfileExecution;
  backbones: Array<string | BackboneSetting>;
  batchSizes: number[];
  images: ProfileImages;
  measurement: ProfileMeasurement;
  endToEnd?: ProfileEndToEnd;
  heads?: ProfileHeads;
  budgets?: Budget[];
  autotune?: AutotuneSpace;
  tuned?: { at: string; from: string; host: string; choices?: TunedChoice[] };
}

/** A profile with where it came from. */
export interface LoadedProfile {
  profile: DeviceProfile;
  /** Absolute path of the file it was read from. */
  file: string;
  /** The file's bytes as read (results record its sha256). */
  text: string;
}

let cachedSchema: JsonSchema | undefined;

export function profileSchema(): JsonSchema {
  if (cachedSchema) return cachedSchema;
  const path = profileSchemaPath();
  let schema: JsonSchema;
  try {
    schema = JSON.parse(readFileSync(path, 'utf8')) as JsonSchema;
  } catch (error) {
    throw new EdgetlError('profile-schema', `cannot read the device-profile schema ${path}: ${describeError(error)}`, {
      file: path,
    });
  }
  assertSupportedSchema(schema);
  cachedSchema = schema;
  return schema;
}

/** Backbone settings with the profile's defaults filled in. */
export function backboneSettings(
  profile: DeviceProfile,
): Array<Required<Pick<BackboneSetting, 'id' | 'batchSizes'>> & BackboneSetting> {
  return profile.backbones.map((entry) => {
    const setting = typeof entry === 'string' ? { id: entry } : entry;
    return { ...setting, batchSizes: setting.batchSizes ?? profile.batchSizes };
  });
}

/**
 * Checks a parsed profile against the schema, then the rules a schema can't say (budgets must refer to
 * backbones, providers and batch sizes the profile measures; durations must be ordered). Throws an EdgetlError
 * naming the file and every offending field.
 */
export function validateProfile(value: unknown, file: string): DeviceProfile {
  const violations = validateJson(value, profileSchema());
  if (violations.length > 0) {
    throw new EdgetlError('profile-invalid', `device profile ${file} is invalid: ${formatViolations(violations)}`, {
      file,
    });
  }
  const profile = value as DeviceProfile;
  const problems: string[] = [];
  const measurement = profile.measurement;
  if (measurement.maxDurationMs !== undefined && measurement.maxDurationMs < measurement.minDurationMs) {
    problems.push(
      `measurement.maxDurationMs (${measurement.maxDurationMs}) must not be below measurement.minDurationMs (${measurement.minDurationMs})`,
    );
  }
  const settings = backboneSettings(profile);
  const ids = settings.map((s) => s.id);
  ids.forEach((id, i) => {
    if (ids.indexOf(id) !== i) problems.push(`backbones[${i}] repeats "${id}"`);
  });
  const allBatches = new Set(settings.flatMap((s) => s.batchSizes));
  (profile.budgets ?? []).forEach((budget, i) => {
    if (budget.backbone !== undefined && !ids.includes(budget.backbone)) {
      problems.push(
        `budgets[${i}].backbone "${budget.backbone}" is not one of the profile's backbones (${ids.join(', ')})`,
      );
    }
    if (budget.provider !== undefined && !profile.execution.providers.includes(budget.provider)) {
      problems.push(
        `budgets[${i}].provider "${budget.provider}" is not one of execution.providers (${profile.execution.providers.join(', ')})`,
      );
    }
    if (budget.batch !== undefined && !allBatches.has(budget.batch)) {
      problems.push(
        `budgets[${i}].batch ${budget.batch} is not one of the profile's batch sizes (${[...allBatches].join(', ')})`,
      );
    }
  });
  const names = (profile.budgets ?? []).map((b) => b.name);
  names.forEach((name, i) => {
    if (names.indexOf(name) !== i) problems.push(`budgets[${i}].name "${name}" is used twice`);
  });
  if (profile.purpose === 'correctness' && !profile.execution.providers.some((p) => p !== 'cpu')) {
    problems.push('purpose "correctness" compares a provider with cpu: execution.providers needs one besides cpu');
  }
  if (problems.length > 0) {
    throw new EdgetlError('profile-invalid', `device profile ${file} is invalid: ${problems.join('; ')}`, { file });
  }
  return profile;
}

export function parseProfile(text: string, file: string): DeviceProfile {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new EdgetlError('profile-invalid', `device profile ${file} is not valid JSON: ${describeError(error)}`, {
      file,
    });
  }
  return validateProfile(value, file);
}

/** Names of the profiles shipped in device-profiles/. */
export function listProfiles(): string[] {
  const dir = deviceProfilesDir();
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json') && !f.endsWith('.schema.json'))
    .map((f) => basename(f, '.json'))
    .sort();
}

/** Finds a profile by file path or by name (device-profiles/<name>.json), reads and validates it. */
export function loadProfile(fileOrName: string): LoadedProfile {
  const looksLikePath = fileOrName.endsWith('.json') || fileOrName.includes('/') || fileOrName.includes('\\');
  const file = looksLikePath ? resolve(fileOrName) : join(deviceProfilesDir(), `${fileOrName}.json`);
  if (!existsSync(file)) {
    const known = listProfiles();
    throw new EdgetlError(
      'profile-not-found',
      looksLikePath
        ? `device profile ${file} does not exist`
        : `no device profile named "${fileOrName}" (looked for ${file}); shipped profiles: ${known.join(', ') || 'none'}`,
      { file },
    );
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new EdgetlError('profile-unreadable', `cannot read device profile ${file}: ${describeError(error)}`, {
      file,
    });
  }
  return { profile: parseProfile(text, file), file, text };
}

/**
 * The image folder a profile names, resolved: a leading `$EDGETL_DATA_PATH` becomes that variable (default
 * ../shared beside the working directory), anything else is relative to the profile file.
 */
export function resolveImageFolder(folder: string, profileFile: string): string {
  const variable = /^\$\{?EDGETL_DATA_PATH\}?(?=\/|$)/;
  if (variable.test(folder)) {
    const base = process.env.EDGETL_DATA_PATH || resolve('..', 'shared');
    return join(base, folder.replace(variable, ''));
  }
  return isAbsolute(folder) ? folder : resolve(dirname(profileFile), folder);
}

/** Backbone ids that look like paths are relative to the profile file. */
export function resolveBackboneReference(id: string, profileFile: string): string {
  const isPath = id.endsWith('.onnx') || id.includes('/') || id.includes('\\');
  if (!isPath || isAbsolute(id)) return id;
  return resolve(dirname(profileFile), id);
}
