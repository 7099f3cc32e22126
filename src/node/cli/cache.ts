import {
  CACHE_KINDS,
  cacheInfo,
  clearCache,
  formatBytes,
  parseDuration,
  parseSize,
  setEmbeddingCacheBound,
  type CacheKind,
} from '../cache-admin.js';
import { edgetlCacheDir } from '../util/cache-dir.js';
import { EdgetlError } from '../../core/util/errors.js';
import { type Command, parseCommandLine, printJson } from './common.js';

const help = `Usage: edgetl cache info [--json]
       edgetl cache clear [--kind embeddings|extractors|downloads|tuning]... [--older-than 30d] [--json]
       edgetl cache limit <size|none> [--json]

What edgetl keeps on this device, in EDGETL_CACHE_DIR (default ~/.cache/edgetl):
  embeddings   embeddings of images already seen, per backbone and preprocessing (so a second run skips decoding
               and inference); bounded: when a run ends over the bound, the least-recently-used entries go, down to
               80% of it, and records two processes both appended are compacted away
  extractors   feature-extractor graphs cut from each backbone (rebuilt in a second when missing)
  downloads    catalog backbones downloaded from their URL (downloaded again when needed and online)
  tuning       the settings \`edgetl embed --autotune\` chose, per backbone and machine (cleared: defaults again)

info     size, files and entries per kind, where they are, and the embeddings bound
clear    remove everything, or only --kind (repeatable or comma-separated), or only what was last used longer
         ago than --older-than (30d, 12h, 2w; embeddings by each entry's last use, the rest by file time)
limit    set the embeddings bound (500MB, 2GB, 1.5GiB; "none" for no bound); EDGETL_CACHE_MAX_SIZE overrides it
         for one run. Default 2 GiB.
`;

function parseKinds(values: string[] | undefined): CacheKind[] | undefined {
  if (!values || values.length === 0) return undefined;
  const kinds = values
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter(Boolean);
  for (const kind of kinds) {
    if (!(CACHE_KINDS as readonly string[]).includes(kind))
      throw new EdgetlError('usage', `--kind must be one of ${CACHE_KINDS.join(', ')}, got "${kind}"`);
  }
  return [...new Set(kinds)] as CacheKind[];
}

export const cacheCommand: Command = {
  name: 'cache',
  summary: 'what edgetl keeps on the device (embeddings, extractors, downloads, tuning): info, clear, limit',
  help,
  async run(argv) {
    const [action, ...rest] = argv;
    const root = edgetlCacheDir();
    if (action === 'info') {
      const { values } = parseCommandLine(rest, { json: { type: 'boolean' }, debug: { type: 'boolean' } }, false);
      const info = await cacheInfo(root);
      if (values.json) {
        printJson(info);
        return 0;
      }
      const bound = info.embeddingsBound;
      const lines = [`edgetl cache at ${info.root}: ${formatBytes(info.totalBytes)} in all`];
      for (const kind of info.kinds) {
        const what = { embeddings: 'images', extractors: 'extractors', downloads: 'models', tuning: 'tunings' }[
          kind.kind
        ];
        lines.push(
          `  ${kind.kind.padEnd(10)}  ${formatBytes(kind.bytes).padStart(9)}  ${String(kind.entries).padStart(6)} ${what.padEnd(10)}  ${kind.path}${kind.lastUsed ? `  (last ${kind.lastUsed.slice(0, 16).replace('T', ' ')})` : ''}`,
        );
      }
      lines.push(
        `  embeddings bound: ${bound.maxBytes === null ? 'none' : formatBytes(bound.maxBytes)} (${bound.source})`,
      );
      process.stdout.write(lines.join('\n') + '\n');
      return 0;
    }
    if (action === 'clear') {
      const { values, positionals } = parseCommandLine(rest, {
        kind: { type: 'string', multiple: true },
        'older-than': { type: 'string' },
        json: { type: 'boolean' },
        debug: { type: 'boolean' },
      });
      if (positionals.length > 0)
        throw new EdgetlError(
          'usage',
          `edgetl cache clear takes no arguments (got ${positionals.join(' ')}); use --kind and --older-than`,
        );
      const report = await clearCache(root, {
        kinds: parseKinds(values.kind),
        olderThanMs: values['older-than'] === undefined ? undefined : parseDuration(values['older-than']),
      });
      if (values.json) {
        printJson(report);
        return 0;
      }
      const total = report.removed.reduce((s, r) => s + r.bytes, 0);
      const lines = [
        `Removed ${formatBytes(total)} from ${report.root}${values['older-than'] ? ` (unused for ${values['older-than']})` : ''}`,
      ];
      for (const r of report.removed)
        lines.push(
          `  ${r.kind.padEnd(10)}  ${formatBytes(r.bytes).padStart(9)}  ${r.files} file(s)${r.entries !== undefined ? `, ${r.entries} image(s)` : ''}`,
        );
      process.stdout.write(lines.join('\n') + '\n');
      return 0;
    }
    if (action === 'limit') {
      const { values, positionals } = parseCommandLine(rest, { json: { type: 'boolean' }, debug: { type: 'boolean' } });
      if (positionals.length !== 1)
        throw new EdgetlError('usage', 'edgetl cache limit <size|none>: e.g. edgetl cache limit 500MB');
      const maxBytes = /^(none|unlimited|off)$/i.test(positionals[0]) ? null : parseSize(positionals[0]);
      await setEmbeddingCacheBound(maxBytes, root);
      if (values.json) printJson({ root, embeddingsMaxBytes: maxBytes });
      else
        process.stdout.write(
          `embeddings bound: ${maxBytes === null ? 'none' : formatBytes(maxBytes)} (applied when the next run ends${process.env.EDGETL_CACHE_MAX_SIZE ? '; EDGETL_CACHE_MAX_SIZE is set and overrides it' : ''})\n`,
        );
      return 0;
    }
    throw new EdgetlError(
      'usage',
      action === undefined
        ? 'missing action: edgetl cache info | clear | limit (see --help)'
        : `unknown action "${action}": edgetl cache info | clear | limit`,
    );
  },
};
