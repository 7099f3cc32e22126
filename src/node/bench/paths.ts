import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The installed package's root (the folder holding device-profiles/), found by walking up from this module:
 * the same answer from src/bench/*.ts under the test runner and from the bundled dist/cli.js.
 */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'device-profiles', 'profile.schema.json')) && existsSync(join(dir, 'package.json')))
      return dir;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return resolve('.');
}

export function deviceProfilesDir(): string {
  return join(packageRoot(), 'device-profiles');
}

export function profileSchemaPath(): string {
  return join(deviceProfilesDir(), 'profile.schema.json');
}

export function resultsSchemaPath(): string {
  return join(packageRoot(), 'bench', 'results.schema.json');
}
