import type { Command } from './common.js';
import { serveCommand } from './serve.js';
import { embedCommand } from './embed.js';
import { startCommand } from './start.js';
import { modelsCommand } from './models.js';
import { benchCommand } from './bench.js';
import { trainCommand } from './train.js';
import { evalCommand } from './eval.js';
import { predictCommand } from './predict.js';
import { headCommand } from './head.js';
import { setupCommand } from './setup.js';
import { exportCommand } from './export.js';
import { cacheCommand } from './cache.js';
import { driftCommand } from './drift.js';
import { adaptCommand } from './adapt.js';
import { selectCommand } from './select.js';

/** Every CLI verb, in the order `edgetl --help` lists them. Each lives in its own file. */
export const commands: Command[] = [
  startCommand,
  embedCommand,
  trainCommand,
  evalCommand,
  predictCommand,
  headCommand,
  exportCommand,
  driftCommand,
  adaptCommand,
  selectCommand,
  modelsCommand,
  cacheCommand,
  serveCommand,
  benchCommand,
  setupCommand,
];
