import t from 'tap';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { repoRoot } from './helpers/shared.js';

const biome = join(repoRoot, 'node_modules', '.bin', 'biome');

/**
 * Lints `source` as the file at `path` under the repo's own biome.json, in a scratch copy of the layout (so no
 * probe file ever appears in the real tree, where other tests and the build would see it).
 */
function lintAs(path: string, source: string): { status: number | null; output: string } {
  const root = mkdtempSync(join(tmpdir(), 'edgetl-lint-'));
  try {
    copyFileSync(join(repoRoot, 'biome.json'), join(root, 'biome.json'));
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), source);
    const result = spawnSync(biome, ['lint', path], { cwd: root, encoding: 'utf8' });
    return { status: result.status, output: `${result.stdout}${result.stderr}` };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const nodeOnly = "import { readFileSync } from 'node:fs';\nexport const read = readFileSync;\n";

t.test('the runtime-neutral core may not import Node, sharp, onnxruntime or the node/web layers', async (t) => {
  const core = lintAs('src/core/heads/probe.ts', nodeOnly);
  t.not(core.status, 0, 'a core module importing node:fs fails lint');
  t.match(core.output, /runtime-neutral|noNodejsModules/);
  for (const source of [
    "import sharp from 'sharp';\nexport const s = sharp;\n",
    "import * as ort from 'onnxruntime-node';\nexport const o = ort;\n",
    "import { readFileSync } from 'fs';\nexport const r = readFileSync;\n",
    "import { writeFileAtomic } from '../../node/util/atomic-write.js';\nexport const w = writeFileAtomic;\n",
  ]) {
    t.not(lintAs('src/core/models/probe.ts', source).status, 0, `refused in core: ${source.split('\n')[0]}`);
  }
  t.equal(lintAs('src/node/util/probe.ts', nodeOnly).status, 0, 'the same import is fine in src/node');
  t.equal(
    lintAs('src/core/heads/probe.ts', "import { softmaxRows } from './softmax.js';\nexport const s = softmaxRows;\n")
      .status,
    0,
    'core importing core is fine',
  );
});
