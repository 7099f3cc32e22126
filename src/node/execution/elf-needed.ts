/**
 * The shared libraries an ELF file names as DT_NEEDED, read from its section headers (.dynamic and the string table it
 * links to). Enough to tell which CUDA/cuDNN sonames a provider library will ask the dynamic loader for, without
 * loading it (loading onnxruntime's provider outside onnxruntime runs initializers that expect its host).
 */
import { closeSync, openSync, readSync } from 'node:fs';

const SHT_DYNAMIC = 6;
const DT_NULL = 0n;
const DT_NEEDED = 1n;
const DT_SONAME = 14n;
const DT_RUNPATH = 29n;
const DT_RPATH = 15n;

export interface ElfDynamicInfo {
  needed: string[];
  soname?: string;
  /** DT_RUNPATH or DT_RPATH, as written (may hold $ORIGIN). */
  runpath?: string;
}

/** undefined when `path` is not a readable little-endian ELF with a dynamic section (a dummy file, a script). */
export function readElfDynamic(path: string): ElfDynamicInfo | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const read = (offset: number, length: number): Buffer => {
      const buffer = Buffer.alloc(length);
      const bytesRead = readSync(fd, buffer, 0, length, offset);
      if (bytesRead !== length) throw new Error('short read');
      return buffer;
    };
    const header = read(0, 64);
    if (header.readUInt32BE(0) !== 0x7f454c46) return undefined;
    const is64 = header[4] === 2;
    if (header[5] !== 1) return undefined; // big-endian: no CUDA provider is built so
    const shoff = is64 ? Number(header.readBigUInt64LE(0x28)) : header.readUInt32LE(0x20);
    const shentsize = header.readUInt16LE(is64 ? 0x3a : 0x2e);
    const shnum = header.readUInt16LE(is64 ? 0x3c : 0x30);
    if (shoff === 0 || shnum === 0 || shentsize < (is64 ? 64 : 40)) return undefined;
    const sections = read(shoff, shentsize * shnum);
    const section = (i: number) => {
      const at = i * shentsize;
      return is64
        ? {
            type: sections.readUInt32LE(at + 4),
            offset: Number(sections.readBigUInt64LE(at + 0x18)),
            size: Number(sections.readBigUInt64LE(at + 0x20)),
            link: sections.readUInt32LE(at + 0x28),
          }
        : {
            type: sections.readUInt32LE(at + 4),
            offset: sections.readUInt32LE(at + 0x10),
            size: sections.readUInt32LE(at + 0x14),
            link: sections.readUInt32LE(at + 0x18),
          };
    };
    for (let i = 0; i < shnum; i++) {
      const dynamic = section(i);
      if (dynamic.type !== SHT_DYNAMIC) continue;
      const strtab = section(dynamic.link);
      const strings = read(strtab.offset, strtab.size);
      const text = (offset: number) => {
        const end = strings.indexOf(0, offset);
        return strings.toString('utf8', offset, end < 0 ? strings.length : end);
      };
      const entries = read(dynamic.offset, dynamic.size);
      const info: ElfDynamicInfo = { needed: [] };
      const entrySize = is64 ? 16 : 8;
      for (let at = 0; at + entrySize <= entries.length; at += entrySize) {
        const tag = is64 ? entries.readBigInt64LE(at) : BigInt(entries.readInt32LE(at));
        const value = is64 ? Number(entries.readBigUInt64LE(at + 8)) : entries.readUInt32LE(at + 4);
        if (tag === DT_NULL) break;
        if (tag === DT_NEEDED) info.needed.push(text(value));
        else if (tag === DT_SONAME) info.soname = text(value);
        else if (tag === DT_RUNPATH || (tag === DT_RPATH && info.runpath === undefined)) info.runpath = text(value);
      }
      return info;
    }
    return undefined;
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}
