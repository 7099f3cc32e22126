import { open, rename, unlink, mkdir, lstat, readlink, readdir, type FileHandle } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { dirname, basename, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { EdgetlError } from '../../core/util/errors.js';

/** Where the bytes for `path` should really go, and how. */
export interface WriteTarget {
  /** The file to write: `path` itself, or the end of its symlink chain. */
  path: string;
  /**
   * 'atomic': temporary sibling of `path` renamed over it. 'direct': opened and written in place, for what a rename
   * would destroy (a character device such as /dev/null, a FIFO, a socket, /dev/stdout and the /proc/self/fd links).
   */
  mode: 'atomic' | 'direct';
  /** The existing regular file, when there is one: its permission bits (and, as root, owner) are kept. */
  existing?: Stats;
}

const MAX_SYMLINK_HOPS = 40;

/**
 * Follows `path`'s symlinks (also dangling ones, so `ln -s new.json head.json` then writing head.json creates
 * new.json) and says how to write what is at the end. Throws for a folder or a symlink loop.
 */
export async function resolveWriteTarget(path: string): Promise<WriteTarget> {
  let current = resolve(path);
  for (let hop = 0; hop <= MAX_SYMLINK_HOPS; hop++) {
    // Names under /dev and /proc (e.g. /dev/stdout -> /proc/self/fd/1 -> a pipe or the shell's redirect) are
    // handles on something else: replacing them would break the redirect or the device, so write into them.
    if (current.startsWith('/dev/') || current.startsWith('/proc/')) return { path: current, mode: 'direct' };
    let info: Stats;
    try {
      info = await lstat(current);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { path: current, mode: 'atomic' };
      throw writeError(path, error);
    }
    if (info.isSymbolicLink()) {
      current = resolve(dirname(current), await readlink(current));
      continue;
    }
    if (info.isFile()) return { path: current, mode: 'atomic', existing: info };
    if (info.isDirectory())
      throw new EdgetlError('write-failed', `cannot write ${path}: it is a folder, not a file`, { file: path });
    return { path: current, mode: 'direct' };
  }
  throw new EdgetlError('write-failed', `cannot write ${path}: too many levels of symbolic links (a symlink loop?)`, {
    file: path,
  });
}

/**
 * Write a file so that a crash at any moment leaves either the old file or the complete new one: write a temporary
 * sibling, fsync it, then rename over the target (atomic on POSIX within one filesystem). What sits at the path is
 * respected: a symlink stays a symlink (its target is replaced atomically, the temporary file in the target's
 * folder), an existing file keeps its permission bits (and its owner when running as root), and special files
 * (/dev/null, /dev/stdout, FIFOs) are written in place instead of replaced. Failures are EdgetlErrors naming `path`.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array | Iterable<Uint8Array>): Promise<void> {
  const target = await resolveWriteTarget(path);
  if (target.mode === 'direct') {
    await writeDirect(path, target.path, data);
    return;
  }
  try {
    await mkdir(dirname(target.path), { recursive: true });
  } catch (error) {
    throw writeError(path, error);
  }
  await removeAbandonedTemporaries(target.path);
  const temporary = temporarySibling(target.path);
  let handle: FileHandle | undefined;
  try {
    handle = await open(temporary, 'wx', target.existing ? target.existing.mode & 0o7777 : 0o666);
    if (typeof data === 'string' || data instanceof Uint8Array) {
      await handle.writeFile(data);
    } else {
      for (const chunk of data) await writeFully(handle, chunk);
    }
    await keepOwnership(handle, target.existing);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(temporary, target.path);
  } catch (error) {
    await handle?.close().catch(() => undefined);
    await unlink(temporary).catch(() => undefined);
    throw writeError(path, error);
  }
}

/**
 * Write all of `chunk` at the current position. FileHandle.write may write less than asked (a disk filling up
 * takes what fits before it fails with ENOSPC), and says so only in `bytesWritten`: loop until done or an error.
 */
export async function writeFully(handle: FileHandle, chunk: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < chunk.length) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.length - offset);
    if (bytesWritten <= 0) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
    offset += bytesWritten;
  }
}

/** Give the temporary file the replaced file's permission bits (open's mode is filtered by the umask) and owner. */
export async function keepOwnership(handle: FileHandle, existing: Stats | undefined): Promise<void> {
  if (!existing) return;
  await handle.chmod(existing.mode & 0o7777);
  if (process.getuid?.() === 0 && (existing.uid !== 0 || existing.gid !== 0))
    await handle.chown(existing.uid, existing.gid);
}

async function writeDirect(
  path: string,
  resolved: string,
  data: string | Uint8Array | Iterable<Uint8Array>,
): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    // Append: /dev/stdout redirected to a file must not truncate what this process already printed there.
    handle = await open(resolved, 'a');
    if (typeof data === 'string' || data instanceof Uint8Array) {
      await handle.writeFile(data);
    } else {
      for (const chunk of data) await writeFully(handle, chunk);
    }
  } catch (error) {
    throw writeError(path, error);
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

const WRITE_REASONS: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'the filesystem is read-only',
  EISDIR: 'it is a folder, not a file',
  ENOTDIR: 'a part of the path is not a folder',
  ELOOP: 'too many levels of symbolic links',
  EFBIG: 'the file is too large for this filesystem',
  EIO: 'input/output error',
  ENAMETOOLONG: 'the name is too long',
};

/** An EdgetlError that names `path` and says why the write failed (errno code kept in the message). */
export function writeError(path: string, error: unknown): EdgetlError {
  if (error instanceof EdgetlError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const reason =
    code && WRITE_REASONS[code]
      ? `${WRITE_REASONS[code]} (${code})`
      : error instanceof Error
        ? error.message
        : String(error);
  return new EdgetlError('write-failed', `cannot write ${path}: ${reason}`, { file: path, cause: error });
}

/** Temporary path beside `path` for streamed writes that finish with `rename`. */
export function temporarySibling(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/**
 * A write killed outright (SIGKILL, power loss) leaves its temporary sibling (`.<name>.<pid>.<hex>.tmp`) behind.
 * Remove those of `path` whose process is gone, so they do not pile up; live processes' files are in use.
 */
export async function removeAbandonedTemporaries(path: string): Promise<void> {
  const prefix = `.${basename(path)}.`;
  let names: string[];
  try {
    names = await readdir(dirname(path));
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith('.tmp')) continue;
    const match = /^(\d+)\.[0-9a-f]+\.tmp$/.exec(name.slice(prefix.length));
    if (!match) continue;
    const pid = Number(match[1]);
    if (pid === process.pid || processIsAlive(pid)) continue;
    await unlink(join(dirname(path), name)).catch(() => undefined);
  }
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
