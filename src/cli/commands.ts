import type { Command } from './common.js';

/** Every CLI verb, in the order `edgetl --help` lists them. Each lives in its own file. */
export const commands: Command[] = [];
