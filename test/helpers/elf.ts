/**
 * A minimal ELF64 shared object for tests: a header, a .dynstr and a .dynamic section with DT_NEEDED / DT_SONAME
 * entries, nothing loadable. Enough for readElfDynamic and for a version string to be found in the bytes, so the
 * CUDA install and detection tests need no real 230 MB provider.
 */
export function fakeSharedObject(options: { needed?: string[]; soname?: string; strings?: string[] } = {}): Buffer {
  const names = [...(options.needed ?? []), ...(options.soname ? [options.soname] : []), ...(options.strings ?? [])];
  const offsets = new Map<string, number>();
  let strtab = Buffer.from([0]);
  for (const name of names) {
    offsets.set(name, strtab.length);
    strtab = Buffer.concat([strtab, Buffer.from(name + '\0')]);
  }
  const dynEntries: [bigint, bigint][] = [
    ...(options.needed ?? []).map((n): [bigint, bigint] => [1n, BigInt(offsets.get(n) ?? 0)]),
    ...(options.soname ? [[14n, BigInt(offsets.get(options.soname) ?? 0)] as [bigint, bigint]] : []),
    [0n, 0n],
  ];
  const strOffset = 64;
  const dynOffset = strOffset + Math.ceil(strtab.length / 8) * 8;
  const dynamic = Buffer.alloc(dynEntries.length * 16);
  dynEntries.forEach(([tag, value], i) => {
    dynamic.writeBigInt64LE(tag, i * 16);
    dynamic.writeBigUInt64LE(value, i * 16 + 8);
  });
  const shOffset = dynOffset + dynamic.length;
  const header = Buffer.alloc(64);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]).copy(header, 0);
  header.writeUInt16LE(3, 0x10); // ET_DYN
  header.writeUInt16LE(62, 0x12); // x86-64
  header.writeUInt32LE(1, 0x14);
  header.writeBigUInt64LE(BigInt(shOffset), 0x28);
  header.writeUInt16LE(64, 0x34);
  header.writeUInt16LE(64, 0x3a);
  header.writeUInt16LE(3, 0x3c);
  const sections = Buffer.alloc(3 * 64);
  const section = (i: number, type: number, offset: number, size: number, link: number, entsize: number) => {
    const at = i * 64;
    sections.writeUInt32LE(type, at + 4);
    sections.writeBigUInt64LE(BigInt(offset), at + 0x18);
    sections.writeBigUInt64LE(BigInt(size), at + 0x20);
    sections.writeUInt32LE(link, at + 0x28);
    sections.writeBigUInt64LE(BigInt(entsize), at + 0x38);
  };
  section(1, 3, strOffset, strtab.length, 0, 0); // SHT_STRTAB
  section(2, 6, dynOffset, dynamic.length, 1, 16); // SHT_DYNAMIC -> strtab
  const padding = Buffer.alloc(dynOffset - strOffset - strtab.length);
  return Buffer.concat([header, strtab, padding, dynamic, sections]);
}

/** What the real package's provider links against (readelf -d), CUDA stack first. */
export const CUDA13_PROVIDER_NEEDS = [
  'libcublasLt.so.13',
  'libcublas.so.13',
  'libcurand.so.10',
  'libcudart.so.13',
  'libcuda.so.1',
  'libstdc++.so.6',
  'libc.so.6',
];
