import { parseArgs, type ParseArgsConfig } from 'node:util';

type ParsedCommandLine<T extends OptionSpec> = ReturnType<
  typeof parseArgs<{ options: T; allowPositionals: true; strict: true }>
>;
import { EdgetlError, describeError } from '../../core/util/errors.js';

/** One CLI verb: parses its own arguments, calls the library, prints, returns the exit code. */
export interface Command {
  name: string;
  summary: string;
  /** Full `--help` text. */
  help: string;
  run(argv: string[]): Promise<number>;
}

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

/** parseArgs with errors a user understands (EdgetlError code 'usage'). */
export function parseCommandLine<T extends OptionSpec>(
  argv: string[],
  options: T,
  allowPositionals = true,
): ParsedCommandLine<T> {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true }) as ParsedCommandLine<T>;
  } catch (error) {
    throw new EdgetlError('usage', `${describeError(error)} (see --help)`);
  }
}

export function parseNumberOption(
  value: string | undefined,
  name: string,
  fallback: number,
  opts?: { integer?: boolean; min?: number; max?: number },
): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || (opts?.integer && !Number.isInteger(parsed))) {
    throw new EdgetlError(
      'usage',
      `--${name} must be ${opts?.integer ? 'a whole number' : 'a number'}, got "${value}"`,
    );
  }
  if (opts?.min !== undefined && parsed < opts.min)
    throw new EdgetlError('usage', `--${name} must be at least ${opts.min}, got ${parsed}`);
  if (opts?.max !== undefined && parsed > opts.max)
    throw new EdgetlError('usage', `--${name} must be at most ${opts.max}, got ${parsed}`);
  return parsed;
}

/** C0 controls, DEL, C1 controls (ESC, CSI... can clear the screen or set the title) and bidi overrides. */
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Text from files (names, labels, messages quoting them) made safe for a terminal: control characters become
 * visible escapes (\x1b, \u202e) instead of acting. With `keepNewlines`, line breaks stay line breaks. For human
 * output only; --json output is JSON-escaped already.
 */
export function terminalSafe(text: string, options: { keepNewlines?: boolean } = {}): string {
  const escapePart = (part: string) =>
    part.replace(UNPRINTABLE, (c) => {
      const code = c.charCodeAt(0);
      return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16)}`;
    });
  return options.keepNewlines ? text.split('\n').map(escapePart).join('\n') : escapePart(text);
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value) + '\n');
}

/** A progress bar on stderr when it is a terminal; silent otherwise (scripts and CI logs stay clean). */
export class ProgressBar {
  private lastDraw = 0;
  private readonly enabled: boolean;
  constructor(
    private readonly label: string,
    enabled = process.stderr.isTTY === true,
  ) {
    this.enabled = enabled;
  }
  update(done: number, total: number | undefined, detail = ''): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.lastDraw < 100 && done !== total) return;
    this.lastDraw = now;
    const width = 30;
    let bar = '';
    if (total && total > 0) {
      const filled = Math.round((Math.min(done, total) / total) * width);
      bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total}`;
    } else {
      bar = `${done}`;
    }
    process.stderr.write(`\r\x1b[2K${this.label} ${bar} ${detail}`);
  }
  finish(): void {
    if (this.enabled) process.stderr.write('\r\x1b[2K');
  }
}

/**
 * Library errors, warnings and notes name library options (`embeddingTensor`, `port`, `type: 'prototype'`,
 * `ep: 'cuda'`, `preprocess.resizeTo`, ...) and functions; the CLI says the flag or verb that does the same. Order
 * matters: a whole phrase is mapped before the option inside it. Messages without such a mention pass unchanged.
 */
const LIBRARY_TERMS_TO_FLAGS: readonly [RegExp, string][] = [
  [
    /without the `embeddingTensor` option the embedding is found automatically/g,
    'use `edgetl models inspect` to see the embedding found automatically',
  ],
  [/the `embeddingTensor` option/g, '--embedding <tensor>'],
  [/pass another `port` \(0 picks any free one\)/g, 'pass --port <another> (or --port 0 for any free one)'],
  [/pass a `port` of 1024 or above \(e\.g\. 8080\)/g, 'pass --port 8080'],
  [/`type: 'prototype'`/g, '--head prototype'],
  [/: use backbone (\S+) or retrain the head/g, ': pass --backbone $1 or retrain the head'],
  [/if it is a file, give its path as the `backbone` option/g, 'if it is a file, pass --backbone <path to it>'],
  [/name them in the `backbones` option/g, 'name them with --backbones'],
  // Execution providers.
  [/`ep: '(\w+)'`/g, '--ep $1'],
  [/\(`strictEp`\)/g, '(--strict-ep)'],
  // Preprocessing overrides: width and height are one flag, --size.
  [/set by the `preprocess` option/g, 'set by flags'],
  [/override with the `preprocess` option/g, 'override with preprocessing flags'],
  [/`preprocess\.width`, `preprocess\.height`/g, '--size'],
  [/`preprocess\.(?:width|height)`/g, '--size'],
  [/`preprocess\.resizeTo`/g, '--resize-to'],
  [/`preprocess\.channelOrder`/g, '--channel-order'],
  [/`preprocess\.(\w+)`/g, '--$1'],
  // The catalog and model downloads: the models verbs.
  [/\(catalogEntries\(\) lists them\)/g, '(see `edgetl models list`)'],
  [/catalogEntries\(\) lists all (\d+); or pass/g, 'Run `edgetl models list` for all $1, or pass'],
  [
    /Downloading is off \(`download: false`\); with it on, Backbone\.load\('([^']+)'\) downloads it/g,
    'Downloading is off (--offline); `edgetl models fetch $1` downloads it',
  ],
  [
    /\(then Backbone\.load\('([^']+)'\) downloads a verified copy\)/g,
    '(then `edgetl models fetch $1` downloads a verified copy)',
  ],
  // Files the library reads: the verb that writes each.
  [/embedFolder with `out: '([^']*)'` writes it/g, '`edgetl embed <dir> --out $1` writes it'],
  [/write the set again \(embedFolder with `out`\)/g, 'run `edgetl embed` again'],
  [/\(trainHead, then head\.save, writes one\)/g, '(train one with `edgetl train <dir> --out <head.json>`)'],
  [/`out: '([^']*)'`/g, '--out $1'],
  [/`runBench\(loadProfile\('([^']+)'\)\)` runs it/g, 'run it with `edgetl bench --profile $1`'],
  // The CUDA provider install (`edgetl setup cuda`).
  [/install from that file \(the `from` option\)/g, 'run `edgetl setup cuda --from <file.tgz>`'],
  [/`from: '([^']*)'`/g, '--from $1'],
  [/`allowVersionMismatch`/g, '--allow-version-mismatch'],
];

export function inCliTerms(message: string): string {
  return LIBRARY_TERMS_TO_FLAGS.reduce((text, [pattern, flag]) => text.replace(pattern, flag), message);
}

/**
 * Ctrl-C for a long verb: the first one aborts `signal` (the verb finishes its current step and reports what it
 * did, `whatNow`), a second one exits at once with 130. `dispose` removes the handler.
 */
export function abortOnCtrlC(
  verb: string,
  whatNow: string,
  onQuit = 'quitting',
): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) {
      process.stderr.write(`\n${verb}: second Ctrl-C, ${onQuit}\n`);
      process.exit(130);
    }
    process.stderr.write(`\n${verb}: interrupted: ${whatNow} (Ctrl-C again to quit at once)\n`);
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  return { signal: controller.signal, dispose: () => process.off('SIGINT', onSigint) };
}
