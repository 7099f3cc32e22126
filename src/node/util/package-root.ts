import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let memo: string | null | undefined;

/**
 * The root folder of the edgetl package this code runs from: the nearest folder above this module whose
 * package.json is named edgetl. Works for a checkout (src/ under tap, dist/ after the build) and an install
 * (node_modules/edgetl/dist). Undefined when edgetl's code was bundled into another program without its package.
 */
export function edgetlPackageRoot(): string | undefined {
  if (memo !== undefined) return memo ?? undefined;
  memo = null;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown };
      if (pkg.name === 'edgetl') {
        memo = dir;
        break;
      }
    } catch {
      // No package.json here: look one folder up.
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return memo ?? undefined;
}
