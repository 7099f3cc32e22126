/**
 * End to end: image files to embeddings through the real pipeline (`Backbone.embedMany`: decoding in workers
 * overlapping inference, cache off), one timed pass at a time, so the harness can spread each run's passes over
 * the whole benchmark between inference sessions: the spread between them then shows how much the machine's
 * speed wandered.
 */
import { performance } from 'node:perf_hooks';
import type { ExecutionProviderName } from '../../core/execution/types.js';
import { Backbone } from '../embed/backbone.js';
import { describeError } from '../../core/util/errors.js';
import { executionOptions, type PreparedBackbone, type ThreadSetting } from './inference.js';
import type { DeviceProfile } from './profile.js';
import type { BenchResults, EndToEndRun, PreprocessRun } from './results.js';
import { inferenceImagesPerSecondFor, recordEndToEndFigures, round } from './run-figures.js';

export class EndToEndMeasurement {
  readonly run: EndToEndRun;
  readonly repeats: number;
  private readonly images: string[];
  private readonly passSeconds: number[] = [];
  private stopped = false;

  constructor(
    private readonly prepared: PreparedBackbone,
    private readonly provider: ExecutionProviderName,
    private readonly batch: number,
    private readonly threads: ThreadSetting,
    private readonly profile: DeviceProfile,
    images: string[],
    private readonly results: BenchResults,
    private readonly preprocess: PreprocessRun,
    private readonly speedProfile: boolean,
  ) {
    const id = `${prepared.info.id}/${provider}/b${batch}`;
    this.run = { id, backbone: prepared.info.id, provider, batch, status: 'failed', speedClaim: false };
    const total = profile.endToEnd?.images ?? 128;
    this.repeats = Math.max(1, profile.endToEnd?.repeats ?? 3);
    this.images = Array.from({ length: total }, (_, i) => images[i % images.length]!);
  }

  get done(): boolean {
    return this.stopped || this.passSeconds.length >= this.repeats;
  }

  /** Timed passes so far. */
  get passes(): number {
    return this.passSeconds.length;
  }

  /** Loads the backbone, warms it up with one untimed pass, times one pass over the images, closes it. */
  async measurePass(signal?: AbortSignal): Promise<void> {
    if (this.done) return;
    const run = this.run;
    let backbone: Backbone | undefined;
    try {
      try {
        backbone = await Backbone.load(this.prepared.reference, {
          ...executionOptions(this.profile, this.provider, this.threads),
          cache: false,
          download: false,
        });
      } catch (error) {
        if (this.passSeconds.length > 0) throw error;
        run.status = 'unavailable';
        run.reason = `${this.provider} provider cannot run here: ${describeError(error)}`;
        this.stopped = true;
        return;
      }
      const software =
        backbone.provider.adapter?.software === true ||
        (this.provider === 'webgpu' && this.profile.execution.webgpuSoftwareAdapter === true);
      run.speedClaim = this.speedProfile && !software;
      // A freshly loaded backbone's first pass is much slower (MobileNetV2-int8, 192 images: 1.7 s against 0.97 s
      // for the next ones: decode workers and session arenas warming up), so a whole pass warms it, untimed.
      await backbone.embedMany(this.images, { batchSize: this.batch, useCache: false, signal });
      if (signal?.aborted) {
        run.status = 'interrupted';
        this.stopped = true;
        return;
      }
      const t0 = performance.now();
      const result = await backbone.embedMany(this.images, { batchSize: this.batch, useCache: false, signal });
      const seconds = (performance.now() - t0) / 1000;
      if (result.skipped.length > 0 && this.passSeconds.length === 0) {
        this.results.warnings.push(
          `end-to-end ${run.id}: ${result.skipped.length} images skipped (${result.skipped[0]!.path}: ${result.skipped[0]!.reason})`,
        );
      }
      this.passSeconds.push(round(seconds, 4));
    } catch (error) {
      this.stopped = true;
      if (signal?.aborted) {
        run.status = 'interrupted';
      } else {
        run.status = 'failed';
        run.reason = describeError(error);
      }
    } finally {
      await backbone?.close().catch(() => undefined);
    }
  }

  /** Figures from the passes measured; the inference-only figure comes from the inference runs already done. */
  finish(): EndToEndRun {
    const run = this.run;
    if (this.passSeconds.length > 0) {
      recordEndToEndFigures(run, {
        images: this.images.length,
        passSeconds: this.passSeconds,
        preprocessImagesPerSecond: this.preprocess.imagesPerSecond,
        inferenceImagesPerSecond: inferenceImagesPerSecondFor(
          this.results.runs,
          this.prepared.info.id,
          this.provider,
          this.batch,
        ),
      });
    }
    if (run.status === 'failed' && !run.reason) {
      if (this.passSeconds.length >= this.repeats) {
        run.status = 'ok';
      } else {
        run.status = 'interrupted';
        if (this.passSeconds.length === 0) run.reason = 'interrupted before its first pass';
      }
    }
    return run;
  }
}
