/**
 * Activations at the last-block cut, one fixed-size float32 row per example, for fine-tuning (heads/last-block.ts):
 * rows are kept in memory up to a byte budget and the rest spill to a temporary file beside the cache, read back
 * on demand (the page cache keeps hot rows cheap). A 224x224 MobileNetV2 or EfficientNet-B0 row is 7x7x320
 * floats, 61 KiB: 4,000 images with their flipped views are ~490 MiB, so the budget matters on small devices.
 */
import { closeSync, mkdirSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ActivationRows } from '../../core/heads/last-block.js';
import { EdgetlError } from '../../core/util/errors.js';

/** Default in-memory budget: 512 MiB. */
export const DEFAULT_ACTIVATION_MEMORY_BYTES = 512 * 1024 * 1024;

export interface ActivationStoreStats {
  rows: number;
  rowBytes: number;
  memoryBytes: number;
  spilledBytes: number;
  spillFile: string | null;
}

export class ActivationStore implements ActivationRows {
  readonly rowValues: number;
  private readonly memory: Float32Array;
  private readonly memoryRows: number;
  private count = 0;
  private fd: number | undefined;
  private spillPath: string | undefined;

  constructor(
    readonly capacity: number,
    readonly pixels: number,
    readonly channels: number,
    private readonly options: { memoryBytes?: number; spillDir: string },
  ) {
    this.rowValues = pixels * channels;
    const budgetRows = Math.floor((options.memoryBytes ?? DEFAULT_ACTIVATION_MEMORY_BYTES) / (this.rowValues * 4));
    this.memoryRows = Math.max(0, Math.min(capacity, budgetRows));
    this.memory = new Float32Array(this.memoryRows * this.rowValues);
  }

  get rows(): number {
    return this.count;
  }

  /** Append `n` rows laid out one after another. */
  append(values: Float32Array, n: number): void {
    if (values.length < n * this.rowValues)
      throw new EdgetlError('internal', `activation store: ${values.length} values for ${n} rows of ${this.rowValues}`);
    if (this.count + n > this.capacity)
      throw new EdgetlError('internal', `activation store: capacity ${this.capacity} rows exceeded`);
    for (let i = 0; i < n; i++) {
      const row = values.subarray(i * this.rowValues, (i + 1) * this.rowValues);
      const index = this.count++;
      if (index < this.memoryRows) {
        this.memory.set(row, index * this.rowValues);
        continue;
      }
      if (this.fd === undefined) {
        mkdirSync(this.options.spillDir, { recursive: true });
        this.spillPath = join(
          this.options.spillDir,
          `activations-${process.pid}-${randomBytes(4).toString('hex')}.f32`,
        );
        try {
          this.fd = openSync(this.spillPath, 'w+');
        } catch (error) {
          throw new EdgetlError(
            'cache-write',
            `${this.spillPath}: cannot create the activation spill file (${(error as Error).message}); give more memory or a writable cache folder`,
            { file: this.spillPath },
          );
        }
      }
      const bytes = new Uint8Array(row.buffer, row.byteOffset, row.byteLength);
      writeSync(this.fd, bytes, 0, bytes.length, (index - this.memoryRows) * this.rowValues * 4);
    }
  }

  async read(indices: ArrayLike<number>, out: Float32Array): Promise<void> {
    const width = this.rowValues;
    const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    for (let i = 0; i < indices.length; i++) {
      const index = indices[i];
      if (index < 0 || index >= this.count)
        throw new EdgetlError('internal', `activation store: row ${index} of ${this.count}`);
      if (index < this.memoryRows) {
        out.set(this.memory.subarray(index * width, (index + 1) * width), i * width);
      } else {
        readSync(this.fd!, bytes, i * width * 4, width * 4, (index - this.memoryRows) * width * 4);
      }
    }
  }

  stats(): ActivationStoreStats {
    const rowBytes = this.rowValues * 4;
    const inMemory = Math.min(this.count, this.memoryRows);
    return {
      rows: this.count,
      rowBytes,
      memoryBytes: this.memory.byteLength,
      spilledBytes: (this.count - inMemory) * rowBytes,
      spillFile: this.spillPath ?? null,
    };
  }

  /** Remove the spill file. Safe to call twice. */
  close(): void {
    if (this.fd !== undefined) {
      closeSync(this.fd);
      this.fd = undefined;
    }
    if (this.spillPath) rmSync(this.spillPath, { force: true });
  }
}
