/**
 * Node file I/O for heads: reading with clear errors, atomic writes (a crash mid-write leaves the previous head
 * intact), and the storage behind `Head.load(path)` / `head.save(path)` in Node.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Head, setHeadStorage } from './heads/head.js';
import type { ParseOptions, SerializeOptions } from './formats/head-file.js';
import { writeFileAtomic } from './util/atomic-write.js';
import { EdgetlError } from './util/errors.js';

async function readHeadText(path: string): Promise<string> {
  if (/^https?:\/\//i.test(path)) {
    const response = await fetch(path);
    if (!response.ok) throw new EdgetlError('head-read', `${path}: HTTP ${response.status} ${response.statusText}`, { file: path });
    return response.text();
  }
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'file not found (train one with `edgetl train <dir> --out <head.json>`)' : code === 'EISDIR' ? 'is a folder, not a head file' : (error as Error).message;
    throw new EdgetlError('head-read', `cannot read head ${path}: ${reason}`, { file: path, cause: error });
  }
}

setHeadStorage({
  readText: readHeadText,
  writeText: (path, text) => writeFileAtomic(resolve(path), text),
});

/** Load and validate a head file; with `backbone`, refuse a head trained on another backbone. */
export async function loadHead(path: string, options: Omit<ParseOptions, 'file'> = {}): Promise<Head> {
  return Head.parse(await readHeadText(path), { ...options, file: path });
}

/** Serialize and write atomically; returns the bytes written. */
export async function saveHead(head: Head, path: string, options: SerializeOptions = {}): Promise<number> {
  const text = head.serialize(options);
  await writeFileAtomic(resolve(path), text);
  return Buffer.byteLength(text);
}
