/**
 * Node side of the browser benchmark (`edgetl serve --bench <profile>`): prepares the profile's backbones exactly as
 * `edgetl bench` does (same feature extractors, same facts), and turns what the page measured into an edgetl-bench/1
 * results file with the same harness pieces (createResults, finishResults: budgets, timing, host).
 */
import { readFile } from 'node:fs/promises';
import { createResults, finishResults, prepareBackbone } from '../bench/harness.js';
import { backboneSettings, loadProfile, resolveBackboneReference, type LoadedProfile } from '../bench/profile.js';
import { resultsSchema, type BackboneFacts, type BenchResults } from '../bench/results.js';
import { formatViolations, validateJson } from '../../core/bench/json-schema.js';
import type { PreprocessSpec } from '../../core/preprocess/spec.js';
import { EdgetlError } from '../../core/util/errors.js';
import type { BrowserBenchPayload } from '../../web/bench/runner.js';

export interface PreparedBrowserBench {
  loaded: LoadedProfile;
  backbones: { info: BackboneFacts; spec: PreprocessSpec; model: Uint8Array }[];
}

/** Loads a browser profile (device-profiles/browser-*.json or a file) and prepares its backbones. */
export async function prepareBrowserBench(profileNameOrFile: string): Promise<PreparedBrowserBench> {
  const loaded = loadProfile(profileNameOrFile);
  if (loaded.profile.runtime !== 'browser') {
    throw new EdgetlError(
      'usage',
      `profile ${loaded.profile.name} (${loaded.file}) is for the Node runtime: \`runBench(loadProfile('${loaded.profile.name}'))\` runs it`,
      { file: loaded.file },
    );
  }
  const backbones: PreparedBrowserBench['backbones'] = [];
  for (const setting of backboneSettings(loaded.profile)) {
    const prepared = await prepareBackbone(resolveBackboneReference(setting.id, loaded.file));
    backbones.push({
      info: prepared.info,
      spec: prepared.spec,
      model: new Uint8Array(await readFile(prepared.runPath)),
    });
  }
  return { loaded, backbones };
}

/** The page's figures plus profile, host, method and budget verdicts; validated against bench/results.schema.json. */
export function assembleBrowserResults(prepared: PreparedBrowserBench, payload: BrowserBenchPayload): BenchResults {
  const results = createResults(prepared.loaded);
  results.startedAt = payload.startedAt;
  results.complete = payload.complete;
  delete results.incompleteReason;
  if (!payload.complete) results.incompleteReason = payload.incompleteReason ?? 'the page stopped before the end';
  results.imageSource = payload.imageSource;
  results.runs = payload.runs;
  results.preprocess = payload.preprocess;
  results.endToEnd = payload.endToEnd;
  results.heads = payload.heads;
  results.method.memory = 'not measured: a web page cannot read its resident set size';
  // The page runs each run's sessions back to back; only the Node harness interleaves the sessions of all runs.
  results.method.timing = results.method.timing.replace(
    /; the sessions of all runs take turns[^;]*;/,
    '; the sessions of one run follow each other;',
  );
  const b = payload.browser;
  results.warnings = [
    `measured in a browser: ${b.userAgent}; ${b.hardwareConcurrency} logical cores seen by the page; cross-origin isolated: ${b.crossOriginIsolated ? 'yes' : 'no'}; onnxruntime-web ${b.onnxruntimeWeb ?? '?'}. Host facts are those of the machine serving the page.`,
    ...payload.warnings,
  ];
  finishResults(results, prepared.loaded.profile);
  results.finishedAt = payload.finishedAt;
  results.durationSeconds = Math.max(
    0,
    Math.round((Date.parse(payload.finishedAt) - Date.parse(payload.startedAt)) / 10) / 100,
  );
  const violations = validateJson(results, resultsSchema());
  if (violations.length > 0)
    throw new EdgetlError(
      'results-invalid',
      `the browser's results do not fit edgetl-bench/1: ${formatViolations(violations)}`,
    );
  return results;
}
