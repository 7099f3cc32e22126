import type { Command } from './common.js';
import { serveCommand } from './serve.js';

/** Every CLI verb, in the order `edgetl --help` lists them. Each lives in its own file. */
export const commands: Command[] = [
  serveCommand,
];
