import type { Command } from './common.js';
import { serveCommand } from './serve.js';
import { embedCommand } from './embed.js';
import { startCommand } from './start.js';
import { modelsCommand } from './models.js';
import { benchCommand } from './bench.js';

/** Every CLI verb, in the order `edgetl --help` lists them. Each lives in its own file. */
export const commands: Command[] = [
  startCommand,
  embedCommand,
  modelsCommand,
  serveCommand,
  benchCommand,
];
