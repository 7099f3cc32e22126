import { commands } from './commands.js';
import { terminalSafe } from './common.js';
import { isEdgetlError, describeError } from '../../core/util/errors.js';
import { EDGETL_VERSION } from '../../core/version.js';
import { inCliTerms } from './common.js';

function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    `edgetl ${EDGETL_VERSION}: transfer learning at the edge (frozen ONNX backbones, heads trained on the device)`,
    '',
    'Usage: edgetl <command> [options]     edgetl <command> --help for details',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Environment:',
    '  EDGETL_MODEL_PATH   folders searched for backbone files (":"-separated), before ./models, the bundled models and the cache',
    '  EDGETL_DATA_PATH    the sample data folder `start` trains on when given no folder (default: ../shared beside the checkout)',
    '  EDGETL_CACHE_DIR    cache for downloads, feature-extractor models and embeddings (default ~/.cache/edgetl)',
    '  EDGETL_CACHE_MAX_SIZE  size bound of the embedding cache (e.g. 2GB, none; see `edgetl cache --help`)',
    '',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(`${EDGETL_VERSION}\n`);
    return 0;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`edgetl: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(command.help.endsWith('\n') ? command.help : command.help + '\n');
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (error) {
    const debug = rest.includes('--debug') || process.env.EDGETL_DEBUG === '1';
    if (isEdgetlError(error)) {
      process.stderr.write(`edgetl ${name}: ${terminalSafe(inCliTerms(error.message), { keepNewlines: true })}\n`);
      if (debug && error.stack) process.stderr.write(error.stack + '\n');
      return error.code === 'usage' ? 2 : 1;
    }
    process.stderr.write(
      `edgetl ${name}: unexpected error: ${terminalSafe(describeError(error), { keepNewlines: true })}\n`,
    );
    if (error instanceof Error && error.stack)
      process.stderr.write((debug ? error.stack : 'run with --debug for the stack trace') + '\n');
    return 1;
  }
}

// `edgetl ... | head` closes stdout early: that is the reader's choice, not an error worth a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`edgetl: ${describeError(error)}\n`);
    process.exitCode = 1;
  },
);
