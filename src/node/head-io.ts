/**
 * Node file I/O for heads: reading with clear errors, atomic writes (a crash mid-write leaves the previous head
 * intact), and the storage behind `Head.load(path)` / `head.save(path)` in Node.
 */
import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Head, setHeadStorage } from '../core/heads/head.js';
import type { ParseOptions, SerializeOptions } from '../core/formats/head-file.js';
import { DEFAULT_MAX_HEAD_BYTES, checkHeadFileSize } from '../core/formats/head-limits.js';
import { fetchBytes, type TransferOptions } from './models/download.js';
import { writeFileAtomic } from './util/atomic-write.js';
import { EdgetlError } from '../core/util/errors.js';

export interface HeadReadOptions {
  /** Largest head file read (default EDGETL_MAX_HEAD_BYTES from the environment, else 64 MiB). */
  maxBytes?: number;
  /** For heads given as http(s) URLs: the model downloader's connect (10 s) and idle (20 s) timeouts by default. */
  http?: TransferOptions;
}

/** The head size limit: EDGETL_MAX_HEAD_BYTES when set to a positive whole number, else DEFAULT_MAX_HEAD_BYTES. */
export function maxHeadBytes(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.EDGETL_MAX_HEAD_BYTES;
  if (raw === undefined || raw === '') return DEFAULT_MAX_HEAD_BYTES;
  if (!/^\d+$/.test(raw) || Number(raw) < 1)
    throw new EdgetlError('usage', `EDGETL_MAX_HEAD_BYTES must be a positive whole number of bytes, got "${raw}"`);
  return Number(raw);
}

/** The text of a head file or http(s) URL, within the size limit and (for URLs) the transfer timeouts. */
export async function readHeadText(path: string, options: HeadReadOptions = {}): Promise<string> {
  const maxBytes = options.maxBytes ?? maxHeadBytes();
  if (/^https?:\/\//i.test(path)) {
    const bytes = await fetchBytes(path, { ...options.http, maxBytes });
    return new TextDecoder().decode(bytes);
  }
  try {
    // Refuse an oversized file before reading a byte of it.
    const info = await stat(path);
    if (info.isFile()) checkHeadFileSize(info.size, maxBytes, path);
    return await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT'
        ? 'file not found (trainHead, then head.save, writes one)'
        : code === 'EISDIR'
          ? 'is a folder, not a head file'
          : (error as Error).message;
    if (error instanceof EdgetlError) throw error;
    throw new EdgetlError('head-read', `cannot read head ${path}: ${reason}`, { file: path, cause: error });
  }
}

setHeadStorage({
  readText: (location) => readHeadText(location),
  writeText: (path, text) => writeFileAtomic(resolve(path), text),
});

/** Load and validate a head file; with `backbone`, refuse a head trained on another backbone. */
export async function loadHead(
  path: string,
  options: Omit<ParseOptions, 'file'> & HeadReadOptions = {},
): Promise<Head> {
  const maxBytes = options.maxBytes ?? maxHeadBytes();
  return Head.parse(await readHeadText(path, { ...options, maxBytes }), { ...options, maxBytes, file: path });
}

/** Serialize and write atomically; returns the bytes written. */
export async function saveHead(head: Head, path: string, options: SerializeOptions = {}): Promise<number> {
  const text = head.serialize(options);
  await writeFileAtomic(resolve(path), text);
  return Buffer.byteLength(text);
}
