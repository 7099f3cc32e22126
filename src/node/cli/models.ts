import { readFile } from 'node:fs/promises';
import { EdgetlError } from '../../core/util/errors.js';
import { catalogEntries, DEFAULT_BACKBONE_ID } from '../../core/models/catalog.js';
import type { CatalogEntry } from '../../core/models/catalog-types.js';
import {
  resolveBackbone,
  bundledModelsDir,
  locateCatalogModel,
  hashModelFile,
  modelSearchLocations,
  type ResolvedBackbone,
  type ResolveOptions,
} from '../models/resolve.js';
import { inspectModel, type ModelFacts, type TensorFacts } from '../../core/models/inspect.js';
import { backboneSpecFor, type BackboneSpec } from '../models/backbone-spec.js';
import { statedEmbedding } from '../models/prepare-backbone.js';
import { inCliTerms, parseCommandLine, parseNumberOption, printJson, ProgressBar, type Command } from './common.js';
import { preprocessFlagHelp, preprocessFlagOptions, preprocessOverridesFromFlags } from './preprocess-flags.js';

const help = `edgetl models: the backbone catalog, local copies, and what is inside an ONNX file

Usage:
  edgetl models list [--json] [--verify]
  edgetl models inspect <id|path> [--embedding <tensor>] [--offline] [--json] [preprocessing flags]
  edgetl models fetch <id> [--json] [--timeout <seconds>]

list      Every catalog backbone (bundled with edgetl, or downloadable): id, kind, size, license, and whether a
          copy is present locally and where. --verify also checks each copy's sha256.
inspect   Inputs, outputs, opsets, parameter count, quantization (none / qoperator / qdq), batch ("dynamic" or the
          fixed size), multiply-accumulates per image, the embedding tensor and its dimension, plus the resolved
          file, its sha256, catalog id and the preprocessing edgetl will use (and where it comes from).
          A catalog model missing locally is downloaded first unless --offline.
fetch     Download a catalog backbone into the cache now (verified by sha256, written atomically).

Options:
  --embedding <tensor>  use this tensor as the embedding instead of the automatic choice
  --offline             never download; fail with the places looked instead
  --timeout <seconds>   give up on a silent server after this long (default 20)
  --verify              (list) hash present files and compare with the catalog
  --json                one JSON object on stdout

A backbone is a catalog id (see "list"), a path to an .onnx file, or the name of another <name>.onnx on the
search path. Ids are looked for in each EDGETL_MODEL_PATH folder, then ./models, then the models bundled with
edgetl (${DEFAULT_BACKBONE_ID}), then the user cache (<cache>/models, EDGETL_CACHE_DIR); a missing catalog model is
then downloaded. A file whose sha256 matches a catalog entry gets that entry's preprocessing whatever its name.
For other models, preprocessing comes from
<name>.edgetl.json beside the model, e.g.
  {"preprocess": {"scale": 0.00784313725490196, "mean": [1,1,1], "std": [1,1,1]}, "embedding": {"tensor": "pool"}}
or from flags; otherwise the stated defaults apply.

${preprocessFlagHelp}
`;

const options = {
  json: { type: 'boolean' },
  verify: { type: 'boolean' },
  offline: { type: 'boolean' },
  embedding: { type: 'string' },
  timeout: { type: 'string' },
  debug: { type: 'boolean' },
  ...preprocessFlagOptions,
} as const;

export const modelsCommand: Command = {
  name: 'models',
  summary: 'list the backbone catalog, inspect an ONNX backbone, fetch one into the cache',
  help,
  async run(argv) {
    const { values, positionals } = parseCommandLine(argv, options);
    const [sub, ...rest] = positionals;
    const preprocessFlags = Object.keys(preprocessFlagOptions).filter(
      (k) => values[k as keyof typeof values] !== undefined,
    );
    switch (sub) {
      case 'list':
        noExtra(rest, 'list');
        onlyFor('list', values, ['json', 'verify', 'debug']);
        return listModels(values.json === true, values.verify === true);
      case 'inspect': {
        if (rest.length !== 1)
          throw new EdgetlError(
            'usage',
            'models inspect needs exactly one backbone: a catalog id or a path to an .onnx file',
          );
        onlyFor('inspect', values, ['json', 'offline', 'embedding', 'timeout', 'debug', ...preprocessFlags]);
        return inspectBackbone(rest[0]!, {
          json: values.json === true,
          offline: values.offline === true,
          embedding: values.embedding,
          timeoutMs: parseNumberOption(values.timeout, 'timeout', 20, { min: 0.1 }) * 1000,
          overrides: preprocessOverridesFromFlags(values),
        });
      }
      case 'fetch': {
        if (rest.length !== 1)
          throw new EdgetlError('usage', 'models fetch needs exactly one catalog id (see `edgetl models list`)');
        onlyFor('fetch', values, ['json', 'timeout', 'debug']);
        return fetchModel(
          rest[0]!,
          values.json === true,
          parseNumberOption(values.timeout, 'timeout', 20, { min: 0.1 }) * 1000,
        );
      }
      case undefined:
        throw new EdgetlError('usage', 'models needs a subcommand: list, inspect or fetch (see --help)');
      default:
        throw new EdgetlError('usage', `unknown models subcommand "${sub}": use list, inspect or fetch (see --help)`);
    }
  },
};

function noExtra(rest: string[], sub: string): void {
  if (rest.length) throw new EdgetlError('usage', `models ${sub} takes no arguments, got "${rest.join(' ')}"`);
}

function onlyFor(sub: string, values: Record<string, unknown>, allowed: string[]): void {
  const misplaced = Object.keys(values).filter((k) => values[k] !== undefined && !allowed.includes(k));
  if (misplaced.length)
    throw new EdgetlError('usage', `models ${sub} does not take ${misplaced.map((k) => `--${k}`).join(', ')}`);
}

// ---- list ---------------------------------------------------------------------------------------------------------

interface ListedModel {
  id: string;
  kind: CatalogEntry['kind'];
  bytes: number;
  license: string;
  description: string;
  default: boolean;
  present: boolean;
  path: string | null;
  /** Something at a search location that is not a model file (a folder, a FIFO...), said instead of "not present". */
  problem: string | null;
  /** With --verify: whether the local copy has the catalog sha256 (null when absent or not checked). */
  verified: boolean | null;
  /** Shipped inside the package (always present unless the install was trimmed). */
  bundled: boolean;
  downloadable: boolean;
  url: string | null;
}

async function listModels(json: boolean, verify: boolean): Promise<number> {
  const models: ListedModel[] = [];
  for (const entry of catalogEntries()) {
    const located = await locateCatalogModel(entry);
    let verified: boolean | null = null;
    if (verify && located.path)
      verified = (await hashModelFile(located.path, { verify: true })) === entry.sha256.toLowerCase();
    models.push({
      id: entry.id,
      kind: entry.kind,
      bytes: entry.bytes,
      license: entry.license,
      description: entry.description,
      default: entry.id === DEFAULT_BACKBONE_ID,
      present: located.path !== undefined,
      path: located.path ?? null,
      problem: located.notAFile ?? null,
      verified,
      bundled: entry.bundled === true,
      downloadable: entry.url !== undefined,
      url: entry.url ?? null,
    });
  }
  const searchPath = modelSearchLocations().map((l) => ({ dir: l.dir, origin: l.origin }));
  if (json) {
    printJson({ defaultBackbone: DEFAULT_BACKBONE_ID, searchPath, models });
    return verify && models.some((m) => m.verified === false) ? 1 : 0;
  }
  const bundled = bundledModelsDir();
  const rows = models.map((m) => [
    m.id + (m.default ? ' *' : ''),
    m.kind,
    formatBytes(m.bytes),
    m.license,
    m.present
      ? m.verified === false
        ? `SHA256 MISMATCH ${m.path}`
        : `${m.verified ? 'verified ' : ''}${m.path}${bundled && m.path!.startsWith(bundled) ? ' (bundled)' : ''}`
      : m.problem
        ? `NOT A FILE: ${m.problem}`
        : m.downloadable
          ? 'not present (downloadable)'
          : 'not present',
  ]);
  const header = ['id', 'kind', 'size', 'license', 'local copy'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  const out = [
    line(header),
    ...rows.map(line),
    '',
    `* default backbone. Searched: ${searchPath.map((s) => s.dir).join(', ')}`,
  ];
  const present = models.filter((m) => m.present).length;
  out.push(
    `${present} of ${models.length} present locally; missing downloadable models are fetched on first use or with \`edgetl models fetch <id>\`.`,
  );
  process.stdout.write(out.join('\n') + '\n');
  return verify && models.some((m) => m.verified === false) ? 1 : 0;
}

// ---- inspect ------------------------------------------------------------------------------------------------------

interface InspectRequest {
  json: boolean;
  offline: boolean;
  embedding?: string;
  timeoutMs: number;
  overrides: ReturnType<typeof preprocessOverridesFromFlags>;
}

async function inspectBackbone(idOrPath: string, request: InspectRequest): Promise<number> {
  const resolved = await withDownloadProgress((hooks) =>
    resolveBackbone(idOrPath, { ...hooks, download: !request.offline, timeoutMs: request.timeoutMs }),
  );
  const bytes = await readFile(resolved.path);
  // The catalog entry or a sidecar may name the embedding tensor; an explicit flag still wins.
  const stated = statedEmbedding(resolved);
  const finalFacts = inspectModel(bytes, { embeddingTensor: request.embedding ?? stated.tensor, file: resolved.path });
  const spec = backboneSpecFor(resolved, request.overrides, {
    inputDims: finalFacts.inputs[0]?.dims,
    sidecar: stated.sidecar,
  });
  const embeddingNamedBy = request.embedding !== undefined ? 'flag' : stated.namedBy;

  const report = {
    id: resolved.id,
    catalogId: resolved.entry?.id ?? null,
    path: resolved.path,
    sha256: resolved.sha256,
    bytes: bytes.length,
    downloaded: resolved.downloaded,
    ...finalFacts,
    embeddingNamedBy,
    preprocess: {
      ...spec.preprocess,
      source: spec.source,
      notes: spec.notes.map(inCliTerms),
      sidecar: spec.sidecar ?? null,
    },
  };
  if (request.json) {
    printJson(report);
    return 0;
  }
  process.stdout.write(describeInspection(resolved, finalFacts, spec, bytes.length, embeddingNamedBy));
  return 0;
}

function describeInspection(
  resolved: ResolvedBackbone,
  facts: ModelFacts,
  spec: BackboneSpec,
  size: number,
  namedBy: string | null,
): string {
  const lines: string[] = [];
  const title = resolved.entry
    ? `${resolved.entry.id} (catalog, ${resolved.entry.kind})`
    : `${resolved.id} (not in the catalog)`;
  lines.push(title);
  if (resolved.entry) lines.push(`  ${resolved.entry.description}`);
  const row = (label: string, value: string) => lines.push(`  ${label.padEnd(13)} ${value}`);
  row('file', resolved.path + (resolved.downloaded ? ' (just downloaded)' : ''));
  row('sha256', resolved.sha256);
  row('size', formatBytes(size));
  if (resolved.entry) row('license', resolved.entry.license);
  row('producer', facts.producer || 'unknown');
  row('opsets', facts.opsets.map((o) => `${o.domain} ${o.version}`).join(', ') + `  (IR ${facts.irVersion})`);
  for (const input of facts.inputs) row('input', tensorLine(input));
  for (const output of facts.outputs) row('output', tensorLine(output));
  row('parameters', countWithExact(facts.parameterCount));
  row('quantization', facts.quantization);
  row(
    'batch',
    facts.batch === 'dynamic'
      ? 'dynamic (images are batched)'
      : facts.batch === 1
        ? 'fixed at 1 (images run one at a time)'
        : `fixed at ${facts.batch}`,
  );
  row(
    'MACs/image',
    facts.macsPerImage === null ? 'unknown (a shape could not be inferred)' : countWithExact(facts.macsPerImage),
  );
  row('nodes', `${facts.nodeCount}`);
  if (facts.embedding) {
    const how =
      namedBy === 'catalog'
        ? 'named by the catalog entry'
        : namedBy === 'sidecar'
          ? `named by ${spec.sidecar}`
          : facts.embedding.source === 'explicit'
            ? 'named by --embedding'
            : facts.embedding.source === 'output'
              ? 'a model output'
              : 'input of the final classifier';
    row(
      'embedding',
      `${facts.embedding.tensor} -> ${facts.embedding.dim}-d float32 (${how}${facts.embedding.needsDequantize ? '; quantized in the graph, dequantized on extraction' : ''})`,
    );
  } else {
    row(
      'embedding',
      `not found: ${facts.embeddingError ? inCliTerms(facts.embeddingError) : 'unknown reason'} (name one with --embedding <tensor>)`,
    );
  }
  row('preprocess', `${spec.source}: ${inCliTerms(spec.notes.at(-1) ?? '')}`);
  for (const note of spec.notes.slice(0, -1)) lines.push(`  ${''.padEnd(13)} ${inCliTerms(note)}`);
  return lines.join('\n') + '\n';
}

function tensorLine(t: TensorFacts): string {
  return `${t.name} ${t.elementType} [${t.dims.join(',')}]`;
}

// ---- fetch --------------------------------------------------------------------------------------------------------

async function fetchModel(id: string, json: boolean, timeoutMs: number): Promise<number> {
  const entry = catalogEntries().find((e) => e.id === id);
  if (!entry) {
    // Let the resolver produce the "closest ids" message; paths are not something to fetch.
    if (/[\\/]|\.onnx$/i.test(id) && !catalogEntries().some((e) => e.id === id.replace(/\.onnx$/i, ''))) {
      throw new EdgetlError('usage', `models fetch takes a catalog id, not a path ("${id}")`);
    }
  }
  const resolved = await withDownloadProgress(
    (hooks) => resolveBackbone(entry ? entry.id : id, { ...hooks, timeoutMs }),
    json,
  );
  if (json) {
    printJson({
      id: resolved.id,
      path: resolved.path,
      sha256: resolved.sha256,
      downloaded: resolved.downloaded,
      bytes: resolved.entry?.bytes ?? null,
    });
  } else {
    process.stdout.write(
      resolved.downloaded
        ? `downloaded ${resolved.id} to ${resolved.path} (sha256 verified)\n`
        : `${resolved.id} is already present: ${resolved.path}\n`,
    );
  }
  return 0;
}

// ---- shared -------------------------------------------------------------------------------------------------------

type DownloadHooks = Pick<ResolveOptions, 'onProgress' | 'onDownloadStart' | 'signal'>;

/** Runs `work` with a progress bar for any download and Ctrl-C cancelling it cleanly (no partial file left). */
async function withDownloadProgress<T>(work: (hooks: DownloadHooks) => Promise<T>, quiet = false): Promise<T> {
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.once('SIGINT', onSigint);
  let bar: ProgressBar | undefined;
  try {
    return await work({
      signal: controller.signal,
      onDownloadStart: (info) => {
        if (!quiet)
          process.stderr.write(
            `downloading ${info.id} (${formatBytes(info.bytes)}) from ${info.url}\n  to ${info.dest}\n`,
          );
        bar = new ProgressBar(`downloading ${info.id}`);
      },
      onProgress: (received, total) => {
        if (total)
          bar?.update(Math.floor((received / total) * 100), 100, `% ${formatBytes(received)} of ${formatBytes(total)}`);
        else bar?.update(received, undefined, 'bytes');
      },
    });
  } finally {
    bar?.finish();
    process.removeListener('SIGINT', onSigint);
  }
}

function formatBytes(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  if (bytes >= 1e3) return `${(bytes / 1e3).toFixed(0)} kB`;
  return `${bytes} B`;
}

function countWithExact(n: number): string {
  const short = formatCount(n);
  return short === String(n) ? short : `${short} (${n})`;
}

function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}
