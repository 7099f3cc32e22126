import { loadHead, maxHeadBytes, readHeadText, saveHead } from '../head-io.js';
import { Head } from '../../core/heads/head.js';
import type { WeightDType } from '../../core/formats/head-file.js';
import { isWeightDType } from '../../core/formats/tensor-encoding.js';
import { EdgetlError } from '../../core/util/errors.js';
import { type Command, inCliTerms, parseCommandLine, printJson, terminalSafe } from './common.js';
import { backboneFlagsHelp } from './embed.js';
import { LazyBackbone, backboneRunOptions, shortPath } from './head-shared.js';
import { existsSync, statSync } from 'node:fs';
import { readEmbeddingSet } from '../embed/embedding-set.js';
import { scanImageFolder } from '../embed/dataset.js';
import { embedFolder } from '../embed/embed-folder.js';

function weightValues(head: Head): number {
  return head.toFileContent().tensors.reduce((sum, t) => sum + t.data.length, 0);
}

function inspectJson(head: Head, path: string, bytes: number) {
  const content = head.toFileContent();
  return {
    path,
    bytes,
    type: head.type,
    labels: head.labels,
    classCount: head.labels.length,
    parameters: content.parameters,
    backbone: head.backbone,
    normalization: content.normalization.kind,
    temperature: head.temperature,
    rejection: head.rejection,
    openSet: content.openSet ?? null,
    adaptation: content.adaptation ?? null,
    warnings: head.warnings,
    tensors: content.tensors.map((t) => ({ name: t.name, shape: t.shape })),
    weightValues: weightValues(head),
    training: {
      edgetlVersion: head.training.edgetlVersion,
      createdAt: head.training.createdAt,
      seed: head.training.seed,
      counts: head.training.counts,
      options: head.training.options,
      metrics: head.training.metrics,
    },
  };
}

const fmt = (v: unknown) =>
  typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : JSON.stringify(v);

function inspectText(head: Head, path: string, bytes: number): string {
  const info = inspectJson(head, path, bytes);
  const lines = [
    `${shortPath(path)}: edgetl-head, ${head.type} head, ${head.labels.length} classes, ${(bytes / 1024).toFixed(1)} KiB (${info.weightValues} weights)`,
    `  labels       ${head.labels.map((l) => `${l} (${head.training.counts[l] ?? '?'})`).join(', ')}`,
    `  backbone     ${head.backbone.id}  ${head.embeddingDim}-d  sha256 ${head.backbone.sha256}`,
  ];
  const p = head.backbone.preprocess;
  if (p)
    lines.push(
      `  preprocess   ${p.layout} ${p.width}x${p.height}, ${p.resize}${p.resize === 'shorter-side' ? ` ${p.resizeTo}` : ''}, crop ${p.crop}, ${p.channelOrder}, scale ${fmt(p.scale)}, mean ${p.mean.map(fmt).join('/')}, std ${p.std.map(fmt).join('/')}`,
    );
  lines.push(
    `  parameters   ${JSON.stringify(info.parameters)}; normalization ${info.normalization}; tensors ${info.tensors.map((t) => `${t.name} [${t.shape}]`).join(', ')}`,
  );
  lines.push(
    `  calibration  temperature ${head.temperature.toFixed(4)}${head.rejection ? `; rejection below ${head.rejection.threshold.toFixed(4)} (rate ${head.rejection.rate})` : '; no rejection'}`,
  );
  const openSet = head.openSet;
  lines.push(
    openSet
      ? `  open set     ${openSet.method}, ${openSet.memoryClasses.length} memory rows, k ${openSet.k}; ${openSet.threshold === null ? 'never rejects' : `unknown above outlier score ${openSet.threshold.toFixed(4)} (rate ${openSet.rate})`}; training mean score ${openSet.reference.mean.toFixed(4)}`
      : '  open set     none (version 1 file: no outlier scores)',
  );
  if (head.adaptation)
    lines.push(
      `  adaptation   feature statistics from ${head.adaptation.spec.rows} field photos (${head.adaptation.spec.createdAt})`,
    );
  lines.push(
    `  trained      ${head.training.createdAt} by edgetl ${head.training.edgetlVersion}, seed ${head.training.seed}; options ${JSON.stringify(head.training.options)}`,
  );
  const metrics = head.training.metrics as Record<string, Record<string, unknown> | undefined>;
  for (const key of ['heldOut', 'validation']) {
    const m = metrics[key];
    if (m)
      lines.push(
        `  ${key.padEnd(12)} ${['source', 'count', 'accuracy', 'balancedAccuracy', 'logLoss', 'ece']
          .filter((k) => m[k] !== undefined)
          .map((k) => `${k} ${fmt(m[k])}`)
          .join(', ')}`,
      );
  }
  return lines.map((line) => terminalSafe(line)).join('\n') + '\n';
}

const headOptions = { ...backboneRunOptions, dtype: { type: 'string' } } as const;

export const headCommand: Command = {
  name: 'head',
  summary: 'inspect a head file; add or remove classes of a prototype head without retraining',
  help: `Usage:
  edgetl head inspect <head.json> [--json]
      labels, type, sizes, calibration, metrics, and the backbone (id, sha256, preprocessing) it needs
  edgetl head add-class <head.json> <label> <dir|embeddings-prefix> [--out other.json] [--backbone <id|path>]
      prototype heads only: add a class (or more examples of an existing one) from a folder of its images
      (flat, or class folders: all images count) or an embedding set; the other classes are untouched
  edgetl head remove-class <head.json> <label> [--out other.json]
      prototype heads only
Heads are rewritten atomically in place unless --out names another file (--dtype auto|float16|float32|int8, default auto: float16, an MLP's layers int8).

${backboneFlagsHelp}
`,
  async run(argv) {
    const { values, positionals } = parseCommandLine(argv, headOptions);
    const [action, path, ...rest] = positionals;
    if (!action) throw new EdgetlError('usage', 'missing action: inspect, add-class or remove-class (see --help)');
    if (!path) throw new EdgetlError('usage', `missing <head.json> after "${action}"`);
    const dtype = (values.dtype ?? 'auto') as WeightDType | 'auto';
    if (dtype !== 'auto' && !isWeightDType(dtype))
      throw new EdgetlError('usage', `--dtype must be auto, float16, float32 or int8, got "${values.dtype}"`);
    if (action === 'inspect') {
      if (rest.length > 0) throw new EdgetlError('usage', `inspect takes one head file, got extra: ${rest.join(' ')}`);
      // Read once: the size shown is what was read (a URL has no stat).
      const text = await readHeadText(path);
      const head = Head.parse(text, { file: path, maxBytes: maxHeadBytes() });
      const bytes = Buffer.byteLength(text);
      if (values.json) printJson(inspectJson(head, path, bytes));
      else process.stdout.write(inspectText(head, path, bytes));
      return 0;
    }
    if (action === 'remove-class') {
      const [label, ...extra] = rest;
      if (!label || extra.length > 0)
        throw new EdgetlError('usage', 'usage: edgetl head remove-class <head.json> <label>');
      const head = await loadHead(path);
      head.removeClass(label);
      const out = values.out ?? path;
      const bytes = await saveHead(head, out, { dtype });
      if (values.json) printJson({ head: out, labels: head.labels, headBytes: bytes });
      else
        process.stdout.write(
          `${terminalSafe(`removed class "${label}": ${shortPath(out)} now has ${head.labels.length} classes (${head.labels.join(', ')})`)}\n`,
        );
      return 0;
    }
    if (action === 'add-class') {
      const [label, source, ...extra] = rest;
      if (!label || !source || extra.length > 0)
        throw new EdgetlError('usage', 'usage: edgetl head add-class <head.json> <label> <dir|embeddings-prefix>');
      const head = await loadHead(path);
      if (head.type !== 'prototype') head.addClass(label, new Float32Array(0)); // throws the clear "prototype only" error
      const backbone = new LazyBackbone(values, head.backbone.id);
      let embeddings: Float32Array;
      let rows: number;
      try {
        if (existsSync(source) && statSync(source).isDirectory()) {
          const scan = await scanImageFolder(source);
          if (scan.classes !== null && scan.classes.length > 1) {
            process.stderr.write(
              `note: ${source} has class folders (${scan.classes.join(', ')}); all their images are added as "${label}"\n`,
            );
          }
          const opened = await backbone.open();
          if (opened.sha256 !== head.backbone.sha256) {
            throw new EdgetlError(
              'head-backbone-mismatch',
              `${path} was trained on backbone ${head.backbone.id} but ${opened.id} was given: pass --backbone ${head.backbone.id}`,
            );
          }
          const result = await embedFolder(opened, source, {
            useCache: values['no-cache'] !== true,
            strict: values.strict === true,
          });
          embeddings = result.embeddings;
          rows = result.items.length;
        } else {
          const set = await readEmbeddingSet(source);
          if (set.backbone.sha256 !== head.backbone.sha256) {
            throw new EdgetlError(
              'head-backbone-mismatch',
              `${source} was embedded with backbone ${set.backbone.id} but ${path} needs ${head.backbone.id}`,
            );
          }
          for (const warning of set.warnings) process.stderr.write(`note: ${terminalSafe(inCliTerms(warning))}\n`);
          embeddings = set.embeddings;
          rows = set.count;
        }
      } finally {
        await backbone.close();
      }
      const existed = head.labels.includes(label);
      head.addClass(label, embeddings, rows);
      const out = values.out ?? path;
      const bytes = await saveHead(head, out, { dtype });
      if (values.json) printJson({ head: out, labels: head.labels, added: rows, headBytes: bytes });
      else
        process.stdout.write(
          `${existed ? `added ${rows} example(s) to` : `added class`} "${label}"${existed ? '' : ` (${rows} example(s))`}: ${shortPath(out)} now has ${head.labels.length} classes\n`,
        );
      return 0;
    }
    throw new EdgetlError('usage', `unknown action "${action}": use inspect, add-class or remove-class`);
  },
};
