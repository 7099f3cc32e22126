/**
 * Child-process side of the crash tests: starts a write, says "ready" on stdout at the moment of interest, and
 * waits to be killed with SIGKILL (test/helpers/child-script.ts). Also runs a plain write for tests that need
 * another user (EACCES as root).
 *
 *   npy-stream <path>      an NpyRowWriter with rows written, not finished (its temporary file is on disk)
 *   torn-set <prefix>      the first half of writeEmbeddingSet: the new NPY renamed into place, the JSON not yet
 *   write <path> <text>    writeFileAtomic once, then exit; an error's message goes to stderr, exit code 3
 *   stdout <text>          print "before", then writeFileAtomic('/dev/stdout', text)
 *   cache-fill <root> <n>  open the embedding cache (fingerprint "shared", dim 4), print "opened", wait for a line on
 *                          stdin, then put n fixed keys and close: two of these overlapping append the same records
 */
import { NpyRowWriter, writeNpyFile } from '../../src/node/embed/npy-file.js';
import { embeddingSetPaths } from '../../src/node/embed/embedding-set.js';
import { writeFileAtomic } from '../../src/node/util/atomic-write.js';
import { EmbeddingCache, imageBytesKey } from '../../src/node/embed/cache.js';
import { IMAGENET_224 } from '../../src/core/preprocess/spec.js';

const [mode, target, extra] = process.argv.slice(2);

function waitForever(): void {
  process.stdout.write('ready\n');
  setInterval(() => undefined, 1000);
}

if (mode === 'npy-stream') {
  const writer = await NpyRowWriter.create(target!, 4);
  // More than one flush (1 MiB chunks), so bytes are really in the temporary file.
  for (let r = 0; r < 100_000; r++) writer.append(Float32Array.of(r, r, r, r));
  await new Promise((resolve) => setTimeout(resolve, 200));
  waitForever();
} else if (mode === 'torn-set') {
  const rows = Number(extra ?? 2);
  const data = new Float32Array(rows * 3).map((_, i) => 100 + i);
  await writeNpyFile(embeddingSetPaths(target!).npy, data, [rows, 3]);
  waitForever();
} else if (mode === 'write') {
  try {
    await writeFileAtomic(target!, extra ?? '');
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(3);
  }
} else if (mode === 'cache-fill') {
  const cache = await EmbeddingCache.open({ root: target!, fingerprint: 'shared', preprocess: IMAGENET_224, dim: 4 });
  process.stdout.write('opened\n');
  await new Promise((resolve) => process.stdin.once('data', resolve));
  for (let i = 0; i < Number(extra); i++)
    cache.put(imageBytesKey(new TextEncoder().encode(`image ${i}`)), Float32Array.of(i, i, i, i));
  await cache.close();
  process.exit(0);
} else if (mode === 'stdout') {
  process.stdout.write('before\n');
  await writeFileAtomic('/dev/stdout', target ?? '');
} else {
  process.stderr.write(`unknown mode ${mode}\n`);
  process.exit(2);
}
