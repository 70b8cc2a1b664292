import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ElfError } from '../../src/guest/errors.js';
import {
  DEFAULT_USER_TOP,
  EM_386,
  EM_AARCH64,
  ET_CORE,
  ET_DYN,
  ET_REL,
  isGlibcProgram,
  parseElf,
  PF_R,
  PF_W,
  PF_X,
  PROT,
  PT_GNU_RELRO,
  PT_GNU_STACK,
  PT_INTERP,
  PT_LOAD,
  PT_NOTE,
  PT_PHDR,
  PT_TLS,
  type ElfImage,
} from '../../src/guest/elf.js';

// ---------------------------------------------------------------------------------------------
// A tiny ELF writer

interface Ph {
  type: number;
  flags: number;
  offset: number | bigint;
  vaddr: number | bigint;
  filesz: number | bigint;
  memsz: number | bigint;
  align: number | bigint;
}

interface Build {
  phdrs: Ph[];
  entry?: number | bigint;
  type?: number;
  phoff?: number | bigint;
  /** Extra bytes to place in the file. */
  blobs?: { offset: number; bytes: Uint8Array }[];
  size?: number;
}

const MEM = 256 * 1024 * 1024;

function buildElf(b: Build): Uint8Array {
  const phoff = b.phoff ?? 64;
  let size = Number(phoff) + b.phdrs.length * 56;
  for (const p of b.phdrs) {
    if (p.type === PT_LOAD && BigInt(p.filesz) > 0n && BigInt(p.offset) + BigInt(p.filesz) < 1n << 32n) {
      size = Math.max(size, Number(p.offset) + Number(p.filesz));
    }
  }
  for (const blob of b.blobs ?? []) size = Math.max(size, blob.offset + blob.bytes.length);
  size = b.size ?? size;
  const f = new Uint8Array(Math.max(size, 64 + b.phdrs.length * 56));
  // recognisable segment contents
  for (let i = 64; i < f.length; i++) f[i] = (i * 7) & 0xff;
  const dv = new DataView(f.buffer);
  f.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]);
  dv.setUint16(16, b.type ?? 2, true);
  dv.setUint16(18, 62, true);
  dv.setUint32(20, 1, true);
  dv.setBigUint64(24, BigInt(b.entry ?? 0x401000), true);
  dv.setBigUint64(32, BigInt(phoff), true);
  dv.setBigUint64(40, 0n, true); // e_shoff
  dv.setUint32(48, 0, true);
  dv.setUint16(52, 64, true);
  dv.setUint16(54, 56, true);
  dv.setUint16(56, b.phdrs.length, true);
  dv.setUint16(58, 64, true);
  dv.setUint16(60, 0, true);
  dv.setUint16(62, 0, true);
  b.phdrs.forEach((p, i) => {
    const o = Number(phoff) + i * 56;
    if (o + 56 > f.length) return;
    dv.setUint32(o, p.type, true);
    dv.setUint32(o + 4, p.flags, true);
    dv.setBigUint64(o + 8, BigInt(p.offset), true);
    dv.setBigUint64(o + 16, BigInt(p.vaddr), true);
    dv.setBigUint64(o + 24, BigInt(p.vaddr), true);
    dv.setBigUint64(o + 32, BigInt(p.filesz), true);
    dv.setBigUint64(o + 40, BigInt(p.memsz), true);
    dv.setBigUint64(o + 48, BigInt(p.align), true);
  });
  for (const blob of b.blobs ?? []) f.set(blob.bytes, blob.offset);
  return f.subarray(0, size);
}

const R = PF_R;
const RX = PF_R | PF_X;
const RW = PF_R | PF_W;

/** A typical static executable: R (headers), R-X text, RW- data+bss, TLS, GNU_STACK. */
function stdPhdrs(): Ph[] {
  return [
    { type: PT_LOAD, flags: R, offset: 0, vaddr: 0x400000, filesz: 0x200, memsz: 0x200, align: 0x1000 },
    { type: PT_LOAD, flags: RX, offset: 0x1000, vaddr: 0x401000, filesz: 0x100, memsz: 0x100, align: 0x1000 },
    { type: PT_LOAD, flags: RW, offset: 0x2000, vaddr: 0x402000, filesz: 0x80, memsz: 0x3000, align: 0x1000 },
    { type: PT_TLS, flags: R, offset: 0x2000, vaddr: 0x402000, filesz: 0x10, memsz: 0x40, align: 8 },
    { type: PT_GNU_STACK, flags: RW, offset: 0, vaddr: 0, filesz: 0, memsz: 0, align: 0x10 },
  ];
}

function std(patch?: (phdrs: Ph[]) => void, extra: Omit<Build, 'phdrs'> = {}): Uint8Array {
  const phdrs = stdPhdrs();
  patch?.(phdrs);
  return buildElf({ phdrs, ...extra });
}

function setPh(phdrs: Ph[], i: number, fields: Partial<Ph>): void {
  Object.assign(phdrs[i]!, fields);
}

/** Runs parseElf, expects an ElfError, and returns it. */
function elfError(file: Uint8Array, opts: { memSize: number; userTop?: bigint } = { memSize: MEM }): ElfError {
  try {
    parseElf(file, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(ElfError);
    return e as ElfError;
  }
  throw new Error('parseElf accepted the file');
}

function expectField(file: Uint8Array, field: string, message?: string | RegExp, opts?: { memSize: number; userTop?: bigint }): ElfError {
  const e = elfError(file, opts);
  expect(e.field).toBe(field);
  if (message !== undefined) expect(e.message).toMatch(message);
  return e;
}

function mutate(file: Uint8Array, f: (dv: DataView, bytes: Uint8Array) => void): Uint8Array {
  const copy = file.slice();
  f(new DataView(copy.buffer, copy.byteOffset, copy.byteLength), copy);
  return copy;
}

// ---------------------------------------------------------------------------------------------

describe('parseElf: valid images', () => {
  it('decodes a typical static executable exactly', () => {
    const img = parseElf(std(), { memSize: MEM });
    expect(img.type).toBe('exec');
    expect(img.entry).toBe(0x401000n);
    expect(img.phnum).toBe(5);
    expect(img.phentsize).toBe(56);
    expect(img.phdrVaddr).toBe(0x400040);
    expect(img.loads).toEqual([
      { index: 0, vaddr: 0x400000, memsz: 0x200, filesz: 0x200, offset: 0, prot: PROT.READ, align: 0x1000, pageStart: 0x400000, pageEnd: 0x401000 },
      { index: 1, vaddr: 0x401000, memsz: 0x100, filesz: 0x100, offset: 0x1000, prot: PROT.READ | PROT.EXEC, align: 0x1000, pageStart: 0x401000, pageEnd: 0x402000 },
      { index: 2, vaddr: 0x402000, memsz: 0x3000, filesz: 0x80, offset: 0x2000, prot: PROT.READ | PROT.WRITE, align: 0x1000, pageStart: 0x402000, pageEnd: 0x405000 },
    ]);
    expect(img.tls).toEqual({ vaddr: 0x402000, filesz: 0x10, memsz: 0x40, align: 8 });
    expect(img.gnuStack).toEqual({ executable: false });
    expect(img.relro).toBeUndefined();
    expect(img.highestAddress).toBe(0x405000);
    expect(img.phdrs).toHaveLength(5);
    expect(img.phdrs[3]).toEqual({ index: 3, type: PT_TLS, flags: R, offset: 0x2000, vaddr: 0x402000, paddr: 0x402000, filesz: 0x10, memsz: 0x40, align: 8 });
    expect(img.phdrs[4]).toEqual({ index: 4, type: PT_GNU_STACK, flags: RW, offset: 0, vaddr: 0, paddr: 0, filesz: 0, memsz: 0, align: 0x10 });
  });

  it('prot bits are decoded from p_flags (PF_R=4, PF_W=2, PF_X=1 map to READ=1, WRITE=2, EXEC=4)', () => {
    expect([PROT.READ, PROT.WRITE, PROT.EXEC]).toEqual([1, 2, 4]);
    const img = parseElf(std((p) => setPh(p, 1, { flags: PF_R | PF_W | PF_X })), { memSize: MEM });
    expect(img.loads[1]!.prot).toBe(7);
    const xOnly = parseElf(std((p) => setPh(p, 1, { flags: PF_X })), { memSize: MEM });
    expect(xOnly.loads[1]!.prot).toBe(PROT.EXEC);
  });

  it('reports an executable stack and PT_GNU_RELRO', () => {
    const img = parseElf(
      std((p) => {
        setPh(p, 4, { flags: RW | PF_X });
        p.push({ type: PT_GNU_RELRO, flags: R, offset: 0x2000, vaddr: 0x402000, filesz: 0x40, memsz: 0x40, align: 1 });
      }),
      { memSize: MEM },
    );
    expect(img.gnuStack).toEqual({ executable: true });
    expect(img.relro).toEqual({ vaddr: 0x402000, memsz: 0x40 });
  });

  it('has no tls / gnuStack when the headers are absent', () => {
    const img = parseElf(std((p) => p.splice(3, 2)), { memSize: MEM });
    expect(img.tls).toBeUndefined();
    expect(img.gnuStack).toBeUndefined();
    expect(img.phnum).toBe(3);
  });

  it('takes phdrVaddr from PT_PHDR when present', () => {
    const img = parseElf(
      std((p) => p.unshift({ type: PT_PHDR, flags: R, offset: 64, vaddr: 0x400040, filesz: 6 * 56, memsz: 6 * 56, align: 8 })),
      { memSize: MEM },
    );
    expect(img.phdrVaddr).toBe(0x400040);
    expect(img.loads.map((l) => l.index)).toEqual([1, 2, 3]);
  });

  it('computes phdrVaddr from the PT_LOAD holding e_phoff when it is not at file offset 0', () => {
    const f = buildElf({
      phoff: 0x1010,
      phdrs: [
        { type: PT_LOAD, flags: RX, offset: 0x1000, vaddr: 0x401000, filesz: 0x200, memsz: 0x200, align: 0x1000 },
      ],
    });
    expect(parseElf(f, { memSize: MEM }).phdrVaddr).toBe(0x401010);
  });

  it('leaves phdrVaddr undefined when no segment maps the program headers (ld -N)', () => {
    const f = buildElf({
      entry: 0x4000e8,
      phdrs: [{ type: PT_LOAD, flags: RW | PF_X, offset: 0xe8, vaddr: 0x4000e8, filesz: 0x78, memsz: 0x208, align: 0x20 }],
    });
    const img = parseElf(f, { memSize: MEM });
    expect(img.phdrVaddr).toBeUndefined();
    expect(img.highestAddress).toBe(0x4000e8 + 0x208);
  });

  it('accepts PT_LOADs sharing a boundary page when their permissions match, counting the page once', () => {
    // RW data ends mid-page; a second RW segment starts in the same page (small max-page-size).
    const f = std((p) => {
      setPh(p, 2, { memsz: 0x880 });
      p.splice(3, 0, { type: PT_LOAD, flags: RW, offset: 0x2900, vaddr: 0x402900, filesz: 0x10, memsz: 0x100, align: 0x20 });
    });
    const img = parseElf(f, { memSize: 0x3000 });
    expect(img.loads.map((l) => [l.pageStart, l.pageEnd])).toEqual([
      [0x400000, 0x401000],
      [0x401000, 0x402000],
      [0x402000, 0x403000],
      [0x402000, 0x403000],
    ]);
    // three distinct pages: one byte less of guest memory is too little
    expectField(f, 'p_memsz', 'segments need 12288 bytes (12 KiB), guest memory is 12287', { memSize: 0x2fff });
  });

  it('returns loads sorted by vaddr even when the table is not', () => {
    const f = std((p) => {
      const [a, b, c] = p.splice(0, 3);
      p.unshift(c!, a!, b!);
    });
    const img = parseElf(f, { memSize: MEM });
    expect(img.loads.map((l) => [l.index, l.vaddr])).toEqual([[1, 0x400000], [2, 0x401000], [0, 0x402000]]);
  });

  it('accepts the lowest allowed address (0x1000) and a segment ending exactly at the user limit', () => {
    const low = buildElf({
      entry: 0x1000,
      phdrs: [{ type: PT_LOAD, flags: RX, offset: 0, vaddr: 0x1000, filesz: 0x200, memsz: 0x200, align: 0x1000 }],
    });
    expect(parseElf(low, { memSize: MEM }).loads[0]!.vaddr).toBe(0x1000);
    const top = std((p) => {
      setPh(p, 2, { vaddr: 0x7ffffffff000 - 0x3000 });
      p.splice(3, 1); // the TLS image stays at 0x402000
    });
    expect(parseElf(top, { memSize: MEM }).highestAddress).toBe(0x7ffffffff000);
  });

  it('ignores p_align 0 and 1 for the offset/vaddr congruence', () => {
    const f = std((p) => {
      setPh(p, 2, { offset: 0x2004, vaddr: 0x402000, align: 1 });
    });
    expect(parseElf(f, { memSize: MEM }).loads[2]!.offset).toBe(0x2004);
    const g = std((p) => setPh(p, 2, { offset: 0x2004, align: 0 }));
    expect(parseElf(g, { memSize: MEM }).loads[2]!.align).toBe(0);
  });

  it('leaves PT_LOAD entries with p_memsz 0 out of loads', () => {
    const f = std((p) => p.push({ type: PT_LOAD, flags: R, offset: 0, vaddr: 0x500000, filesz: 0, memsz: 0, align: 0x1000 }));
    const img = parseElf(f, { memSize: MEM });
    expect(img.loads).toHaveLength(3);
    expect(img.phdrs).toHaveLength(6);
  });

  it('accepts a static-PIE (ET_DYN, no PT_INTERP) based at 0 and reports type dyn', () => {
    const f = std(
      (p) => {
        setPh(p, 0, { vaddr: 0 });
        setPh(p, 1, { vaddr: 0x1000 });
        setPh(p, 2, { vaddr: 0x2000 });
        setPh(p, 3, { vaddr: 0x2000 });
      },
      { type: ET_DYN, entry: 0x1010 },
    );
    const img = parseElf(f, { memSize: MEM });
    expect(img.type).toBe('dyn');
    expect(img.entry).toBe(0x1010n);
    expect(img.phdrVaddr).toBe(0x40);
    expect(img.loads[0]!.vaddr).toBe(0);
    expect(img.highestAddress).toBe(0x5000);
  });

  it('accepts EI_OSABI GNU/Linux (3) as glibc writes it', () => {
    const f = mutate(std(), (_dv, b) => (b[7] = 3));
    expect(parseElf(f, { memSize: MEM }).type).toBe('exec');
  });

  it('reads through byteOffset without copying (file as a subarray of a larger buffer)', () => {
    const inner = std();
    const outer = new Uint8Array(inner.length + 3 + 100);
    outer.set(inner, 3);
    const view = outer.subarray(3, 3 + inner.length);
    expect(parseElf(view, { memSize: MEM })).toEqual(parseElf(inner, { memSize: MEM }));
  });

  it('respects a custom userTop', () => {
    const f = std();
    expect(parseElf(f, { memSize: MEM, userTop: 0x405000n }).highestAddress).toBe(0x405000);
    expectField(f, 'p_vaddr', 'expected it to end at or below 0x404000', { memSize: MEM, userTop: 0x404000n });
  });
});

describe('parseElf: truncated files', () => {
  for (const n of [0, 10, 63]) {
    it(`rejects a ${n}-byte file`, () => {
      const e = expectField(std().subarray(0, n), 'file');
      expect(e.message).toBe(`invalid ELF (file): truncated: ${n} bytes, ELF header needs 64`);
    });
  }

  it('rejects a file cut inside the program header table', () => {
    expectField(std().subarray(0, 64 + 56 * 2 + 10), 'e_phoff', /extends past the end of the file \(186 bytes\)/);
  });

  it('rejects a file cut inside the program header table right after the header', () => {
    expectField(std().subarray(0, 64), 'e_phoff', /0x40-0x158/);
  });

  it("rejects a file cut inside a segment's file data", () => {
    expectField(std().subarray(0, 0x2040), 'p_filesz', /segment 2 \(PT_LOAD\): file data 0x2000-0x2080 .* \(8256 bytes\): the file is truncated/);
  });
});

describe('parseElf: e_ident', () => {
  it('rejects bad magic', () => {
    const e = expectField(mutate(std(), (_dv, b) => (b[3] = 0x47)), 'e_ident[EI_MAG]');
    expect(e.message).toContain('7f 45 4c 47');
    expect(e.message).toContain('not an ELF file');
  });

  it('rejects a short non-ELF file as bad magic, not as truncated', () => {
    expectField(new TextEncoder().encode('#!/bin/sh\necho hi\n'), 'e_ident[EI_MAG]', /script \(#!\)/);
  });

  it('rejects 32-bit class with a specific message', () => {
    const e = expectField(mutate(std(), (_dv, b) => (b[4] = 1)), 'e_ident[EI_CLASS]');
    expect(e.message).toBe(
      'invalid ELF (e_ident[EI_CLASS]): e_ident[EI_CLASS] is 1 (ELFCLASS32): 32-bit programs are not supported, expected 2 (ELFCLASS64)',
    );
  });

  it('rejects a 52-byte 32-bit file as 32-bit, not as truncated', () => {
    const f = mutate(std(), (_dv, b) => (b[4] = 1)).subarray(0, 52);
    expectField(f, 'e_ident[EI_CLASS]', /32-bit/);
  });

  it('rejects an invalid class value', () => {
    expectField(mutate(std(), (_dv, b) => (b[4] = 0)), 'e_ident[EI_CLASS]', 'e_ident[EI_CLASS] is 0, expected 2 (ELFCLASS64)');
  });

  it('rejects big-endian data', () => {
    expectField(mutate(std(), (_dv, b) => (b[5] = 2)), 'e_ident[EI_DATA]', 'is 2 (ELFDATA2MSB, big-endian), expected 1 (ELFDATA2LSB, little-endian)');
  });

  it('rejects a bad EI_VERSION', () => {
    expectField(mutate(std(), (_dv, b) => (b[6] = 0)), 'e_ident[EI_VERSION]', 'e_ident[EI_VERSION] is 0, expected 1 (EV_CURRENT)');
  });

  it('rejects a non-Linux OS ABI', () => {
    expectField(mutate(std(), (_dv, b) => (b[7] = 9)), 'e_ident[EI_OSABI]', 'e_ident[EI_OSABI] is 9 (FreeBSD)');
  });
});

describe('parseElf: ELF header fields', () => {
  it('rejects EM_386', () => {
    const e = expectField(mutate(std(), (dv) => dv.setUint16(18, EM_386, true)), 'e_machine');
    expect(e.message).toBe('invalid ELF (e_machine): e_machine is 3 (EM_386), expected 62 (EM_X86_64)');
  });

  it('rejects EM_AARCH64', () => {
    expectField(mutate(std(), (dv) => dv.setUint16(18, EM_AARCH64, true)), 'e_machine', 'e_machine is 183 (EM_AARCH64), expected 62 (EM_X86_64)');
  });

  it('rejects ET_REL', () => {
    expectField(mutate(std(), (dv) => dv.setUint16(16, ET_REL, true)), 'e_type', /^invalid ELF \(e_type\): e_type is 1 \(ET_REL, a relocatable object file/);
  });

  it('rejects ET_CORE', () => {
    expectField(mutate(std(), (dv) => dv.setUint16(16, ET_CORE, true)), 'e_type', 'e_type is 4 (ET_CORE, a core dump), expected 2 (ET_EXEC) or 3 (ET_DYN, static-PIE)');
  });

  it('rejects an unknown e_type', () => {
    expectField(mutate(std(), (dv) => dv.setUint16(16, 0xfe00, true)), 'e_type', 'e_type is 65024 (unknown)');
  });

  it('rejects a bad e_version', () => {
    expectField(mutate(std(), (dv) => dv.setUint32(20, 2, true)), 'e_version', 'e_version is 2, expected 1 (EV_CURRENT)');
  });

  it('rejects a bad e_ehsize', () => {
    expectField(mutate(std(), (dv) => dv.setUint16(52, 52, true)), 'e_ehsize', 'e_ehsize is 52, expected 64');
  });

  it('rejects a bad e_phentsize', () => {
    expectField(mutate(std(), (dv) => dv.setUint16(54, 32, true)), 'e_phentsize', 'e_phentsize is 32, expected 56');
  });

  it('rejects e_phnum 0', () => {
    expectField(mutate(std(), (dv) => dv.setUint16(56, 0, true)), 'e_phnum', 'e_phnum is 0, expected at least 1');
  });

  it('rejects PN_XNUM', () => {
    expectField(mutate(std(), (dv) => dv.setUint16(56, 0xffff, true)), 'e_phnum', /PN_XNUM/);
  });

  it('rejects an absurd e_phnum', () => {
    expectField(mutate(std(), (dv) => dv.setUint16(56, 4000, true)), 'e_phnum', 'e_phnum is 4000, expected at most 1170');
  });

  it('rejects a program header table beyond EOF', () => {
    expectField(mutate(std(), (dv) => dv.setBigUint64(32, 0x10000n, true)), 'e_phoff', /0x10000-0x10118 .*extends past the end of the file \(8320 bytes\)/);
  });

  it('rejects an e_phoff so large that e_phoff + size would wrap 64 bits', () => {
    expectField(mutate(std(), (dv) => dv.setBigUint64(32, 0xffffffffffffffe0n, true)), 'e_phoff', /extends past the end of the file/);
  });

  it('rejects e_phoff pointing into the ELF header', () => {
    expectField(mutate(std(), (dv) => dv.setBigUint64(32, 0n, true)), 'e_phoff', 'e_phoff is 0x0, which points into the ELF header');
  });
});

describe('parseElf: segments', () => {
  it('rejects p_filesz > p_memsz', () => {
    expectField(std((p) => setPh(p, 1, { filesz: 0x200, memsz: 0x100 })), 'p_filesz', 'segment 1 (PT_LOAD): p_filesz 0x200 is larger than p_memsz 0x100');
  });

  it('rejects segment data beyond EOF', () => {
    const f = std();
    const g = mutate(f, (dv) => dv.setBigUint64(64 + 2 * 56 + 32, 0x1000n, true)); // seg 2 filesz 0x80 -> 0x1000
    expectField(g, 'p_filesz', 'file data 0x2000-0x3000');
  });

  it('rejects a p_offset past EOF', () => {
    expectField(std((p) => setPh(p, 1, { offset: 0x9000, vaddr: 0x401000 }), { size: 0x2080 }), 'p_offset', 'segment 1 (PT_LOAD): p_offset 0x9000 is past the end of the file (8320 bytes)');
  });

  it('rejects overlapping segments', () => {
    expectField(
      std((p) => setPh(p, 2, { vaddr: 0x401000 })),
      'PT_LOAD',
      'PT_LOAD segments overlap: segment 1 0x401000-0x401100 R-X and segment 2 0x401000-0x404000 RW-',
    );
  });

  it('rejects a segment contained in another, whatever the table order', () => {
    const f = std((p) => {
      setPh(p, 0, { memsz: 0x10000 }); // covers 0x400000-0x410000
    });
    expectField(f, 'PT_LOAD', /segments overlap: segment 0 0x400000-0x410000 R-- and segment 1/);
  });

  it('rejects segments that share a page with different permissions', () => {
    const f = std((p) => setPh(p, 2, { offset: 0x1800, vaddr: 0x401800, memsz: 0x80 }));
    expectField(f, 'PT_LOAD', 'share the page at 0x401000 but need different permissions: segment 1 0x401000-0x401100 R-X and segment 2 0x401800-0x401880 RW-');
  });

  it('rejects a segment at vaddr 0', () => {
    expectField(std((p) => setPh(p, 0, { vaddr: 0 })), 'p_vaddr', 'segment 0 (PT_LOAD): p_vaddr is 0x0, expected at least 0x1000 (page 0 must stay unmapped)');
  });

  it('rejects a segment starting inside page 0', () => {
    expectField(std((p) => setPh(p, 0, { vaddr: 0xfff, offset: 0xfff })), 'p_vaddr', 'p_vaddr is 0xfff');
  });

  it('rejects a segment crossing the user address limit', () => {
    const top = Number(DEFAULT_USER_TOP);
    expectField(
      std((p) => setPh(p, 2, { vaddr: top - 0x1000 })),
      'p_vaddr',
      'segment 2 (PT_LOAD): 0x7fffffffe000-0x800000001000 (p_vaddr + p_memsz) is outside user space, expected it to end at or below 0x7ffffffff000',
    );
  });

  it('rejects a kernel-half address', () => {
    expectField(std((p) => setPh(p, 2, { vaddr: 0xffffffff80000000n })), 'p_vaddr', /outside user space/);
  });

  it('rejects vaddr + memsz overflowing 64 bits', () => {
    expectField(
      std((p) => setPh(p, 2, { vaddr: 0xfffffffffffff000n, memsz: 0x3000 })),
      'p_memsz',
      'segment 2 (PT_LOAD): p_vaddr 0xfffffffffffff000 + p_memsz 0x3000 overflows 64 bits',
    );
  });

  it('rejects segments bigger than guest memory', () => {
    const e = expectField(std((p) => setPh(p, 2, { memsz: 0x1000000000 })), 'p_memsz');
    expect(e.message).toBe(
      'invalid ELF (p_memsz): segments need 68719484928 bytes (64 GiB), guest memory is 268435456 bytes (256 MiB) (raise --mem-size)',
    );
  });

  it('accepts segments that exactly fill guest memory', () => {
    expect(parseElf(std(), { memSize: 5 * 4096 }).loads).toHaveLength(3);
    expectField(std(), 'p_memsz', 'segments need 20480 bytes (20 KiB), guest memory is 20479', { memSize: 5 * 4096 - 1 });
  });

  it('rejects p_offset and p_vaddr that differ modulo p_align', () => {
    expectField(
      std((p) => setPh(p, 1, { offset: 0x1001 })),
      'p_offset',
      'segment 1 (PT_LOAD): p_offset 0x1001 and p_vaddr 0x401000 differ modulo p_align 0x1000 (0x1 vs 0x0)',
    );
  });

  it('rejects a p_align that is not a power of two', () => {
    expectField(std((p) => setPh(p, 1, { align: 0x3000 })), 'p_align', 'segment 1 (PT_LOAD): p_align is 0x3000, expected 0, 1 or a power of two');
  });

  it('rejects a file without PT_LOAD', () => {
    expectField(std((p) => p.splice(0, 3)), 'PT_LOAD', 'no PT_LOAD segment among 2 program headers');
  });

  it('rejects a file whose PT_LOADs are all empty', () => {
    expectField(
      std((p) => p.slice(0, 3).forEach((ph) => Object.assign(ph, { filesz: 0, memsz: 0 }))),
      'PT_LOAD',
      'all 3 PT_LOAD segments have p_memsz 0',
    );
  });
});

describe('parseElf: entry, PT_INTERP, PT_PHDR, PT_TLS', () => {
  it('rejects an entry in a non-executable segment', () => {
    expectField(
      std(undefined, { entry: 0x400000 }),
      'e_entry',
      'invalid ELF (e_entry): e_entry 0x400000 is not inside an executable PT_LOAD segment (executable segments: 0x401000-0x401100)',
    );
  });

  it('rejects an entry just past the executable segment', () => {
    expectField(std(undefined, { entry: 0x401100 }), 'e_entry', 'e_entry 0x401100 is not inside');
    expect(parseElf(std(undefined, { entry: 0x4010ff }), { memSize: MEM }).entry).toBe(0x4010ffn);
  });

  it('rejects an entry when no segment is executable', () => {
    expectField(std((p) => setPh(p, 1, { flags: R })), 'e_entry', '(executable segments: none)');
  });

  it('points out that an ET_DYN with entry 0 is a shared library', () => {
    const f = std((p) => p.forEach((ph) => ph.type === PT_LOAD && (ph.vaddr = Number(ph.vaddr) - 0x400000)), { type: ET_DYN, entry: 0 });
    expectField(f, 'e_entry', 'is a shared library, not a program');
  });

  const interpPath = new TextEncoder().encode('/lib64/ld-linux-x86-64.so.2\0');
  const withInterp = (type: number) =>
    std(
      (p) => p.unshift({ type: PT_INTERP, flags: R, offset: 0x300, vaddr: 0x400300, filesz: interpPath.length, memsz: interpPath.length, align: 1 }),
      { type, blobs: [{ offset: 0x300, bytes: interpPath }] },
    );

  it('rejects a dynamically linked ET_EXEC (PT_INTERP)', () => {
    const e = expectField(withInterp(2), 'PT_INTERP');
    expect(e.message).toBe(
      'invalid ELF (PT_INTERP): dynamically linked programs are not supported; link with -static (PT_INTERP requests /lib64/ld-linux-x86-64.so.2)',
    );
  });

  it('rejects a dynamically linked PIE (ET_DYN with PT_INTERP)', () => {
    expectField(withInterp(ET_DYN), 'PT_INTERP', 'dynamically linked programs are not supported; link with -static');
  });

  it('rejects PT_INTERP before other defects', () => {
    const f = mutate(withInterp(2), (dv) => dv.setBigUint64(24, 0n, true)); // also a bad entry
    expectField(f, 'PT_INTERP');
  });

  it('rejects a PT_PHDR outside every PT_LOAD', () => {
    expectField(
      std((p) => p.unshift({ type: PT_PHDR, flags: R, offset: 64, vaddr: 0x300000, filesz: 336, memsz: 336, align: 8 })),
      'PT_PHDR',
      'PT_PHDR 0x300000-0x300150 is not inside any PT_LOAD segment',
    );
  });

  it('rejects PT_TLS with p_filesz > p_memsz', () => {
    expectField(std((p) => setPh(p, 3, { filesz: 0x50 })), 'PT_TLS', 'PT_TLS p_filesz 0x50 is larger than p_memsz 0x40');
  });

  it('rejects a PT_TLS image outside the segments', () => {
    expectField(std((p) => setPh(p, 3, { vaddr: 0x600000 })), 'PT_TLS', 'PT_TLS initialization image 0x600000-0x600010 is not inside any PT_LOAD segment');
  });

  it('rejects two PT_TLS headers', () => {
    expectField(std((p) => p.push({ ...p[3]! })), 'PT_TLS', '2 PT_TLS program headers, expected at most one');
  });

  it('rejects a non-LOAD header with values no user address can have', () => {
    expectField(
      std((p) => p.push({ type: PT_NOTE, flags: R, offset: 0x100, vaddr: 0xffffffffffff0000n, filesz: 0, memsz: 0, align: 4 })),
      'p_vaddr',
      'segment 5 (PT_NOTE): p_vaddr is 0xffffffffffff0000',
    );
  });
});

describe('isGlibcProgram (heuristic)', () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  it('finds glibc markers', () => {
    expect(isGlibcProgram(enc('xxxxGLIBC_TUNABLESxxxx'))).toBe(true);
    expect(isGlibcProgram(enc('..glibc.cpu.hwcaps..'))).toBe(true);
    expect(isGlibcProgram(enc('GNU C Library (Debian GLIBC 2.36)'))).toBe(true);
  });
  it('is false without them', () => {
    expect(isGlibcProgram(std())).toBe(false);
    expect(isGlibcProgram(enc('GLIBC_TUNABLE'))).toBe(false);
    expect(isGlibcProgram(new Uint8Array(0))).toBe(false);
  });
  it('searches only the given view', () => {
    const outer = enc('GLIBC_TUNABLES...............');
    expect(isGlibcProgram(outer.subarray(1))).toBe(false);
    expect(isGlibcProgram(outer.subarray(0, 14))).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// Real binaries from gcc, when the host has it

function which(tool: string): boolean {
  try {
    execFileSync(tool, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const haveGcc = which('gcc');
const haveBinutils = which('readelf') && which('nm');
if (!haveGcc) console.log('elf.test: skipping gcc-built binaries: gcc not found on PATH');
else if (!haveBinutils) console.log('elf.test: skipping gcc-built binaries: readelf/nm not found on PATH');

describe.skipIf(!haveGcc || !haveBinutils)('parseElf: binaries built by gcc', () => {
  const dir = haveGcc ? mkdtempSync(join(tmpdir(), 'switchsim-elf-')) : '';
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function compile(name: string, source: string, flags: string[]): Uint8Array | undefined {
    const src = join(dir, `${name}.c`);
    const out = join(dir, name);
    writeFileSync(src, source);
    try {
      execFileSync('gcc', [...flags, '-o', out, src], { stdio: 'pipe' });
    } catch (e) {
      const stderr = (e as { stderr?: Buffer }).stderr?.toString() ?? String(e);
      console.log(`elf.test: skipping ${name}: gcc ${flags.join(' ')} failed: ${stderr.trim().split('\n')[0]}`);
      return undefined;
    }
    return readFileSync(out);
  }

  /** LOAD lines of `readelf -lW` as the fields parseElf reports. */
  function readelfLoads(path: string) {
    const out = execFileSync('readelf', ['-lW', path], { encoding: 'utf8' });
    return out
      .split('\n')
      .filter((l) => /^\s+LOAD\s/.test(l))
      .map((l) => {
        const m = /LOAD\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+0x[0-9a-f]+\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+([RWE ]{3})\s+(0x[0-9a-f]+)/.exec(l);
        if (!m) throw new Error(`cannot parse readelf line: ${l}`);
        const fl = m[5]!;
        return {
          offset: Number(m[1]),
          vaddr: Number(m[2]),
          filesz: Number(m[3]),
          memsz: Number(m[4]),
          prot: (fl.includes('R') ? PROT.READ : 0) | (fl.includes('W') ? PROT.WRITE : 0) | (fl.includes('E') ? PROT.EXEC : 0),
          align: Number(m[6]),
        };
      })
      .filter((s) => s.memsz > 0)
      .sort((a, b) => a.vaddr - b.vaddr);
  }

  function symbol(path: string, name: string): bigint {
    const out = execFileSync('nm', [path], { encoding: 'utf8' });
    const line = out.split('\n').find((l) => l.endsWith(` ${name}`));
    if (!line) throw new Error(`no symbol ${name} in ${path}`);
    return BigInt(`0x${line.split(' ')[0]}`);
  }

  function checkAgainstReadelf(img: ElfImage, path: string): void {
    expect(img.loads.map(({ offset, vaddr, filesz, memsz, prot, align }) => ({ offset, vaddr, filesz, memsz, prot, align }))).toEqual(
      readelfLoads(path),
    );
    const exec = img.loads.find((l) => l.prot & PROT.EXEC)!;
    expect(img.entry >= BigInt(exec.vaddr) && img.entry < BigInt(exec.vaddr + exec.memsz)).toBe(true);
    expect(img.highestAddress).toBe(Math.max(...img.loads.map((l) => l.vaddr + l.memsz)));
  }

  const nostdlibSource = `
int counter = 5; int table[100]; const int ro[4] = {1, 2, 3, 4};
void _start(void) { __asm__ volatile("mov $60, %%eax; xor %%edi, %%edi; syscall" ::: "memory"); }
`;
  const glibcSource = '#include <stdio.h>\n__thread int tv = 3;\nint main(void) { printf("hi %d\\n", tv); return 0; }\n';

  it('parses a -nostdlib static program', () => {
    const f = compile('nostdlib', nostdlibSource, ['-static', '-nostdlib', '-O2', '-fno-pie', '-no-pie']);
    if (!f) return;
    const path = join(dir, 'nostdlib');
    const img = parseElf(f, { memSize: MEM });
    expect(img.type).toBe('exec');
    expect(img.entry).toBe(symbol(path, '_start'));
    checkAgainstReadelf(img, path);
    expect(img.loads[0]!.offset).toBe(0);
    expect(img.phdrVaddr).toBe(img.loads[0]!.vaddr + 64);
    expect(img.tls).toBeUndefined();
    expect(img.gnuStack).toEqual({ executable: false });
    expect(isGlibcProgram(f)).toBe(false);
  });

  it('parses a glibc -static program', () => {
    const f = compile('glibc', glibcSource, ['-static', '-O2']);
    if (!f) return;
    const path = join(dir, 'glibc');
    const img = parseElf(f, { memSize: MEM });
    expect(img.type).toBe('exec');
    expect(img.entry).toBe(symbol(path, '_start'));
    checkAgainstReadelf(img, path);
    expect(img.phdrVaddr).toBe(img.loads[0]!.vaddr + 64);
    expect(img.tls).toBeDefined();
    expect(img.tls!.filesz).toBeGreaterThanOrEqual(4);
    expect(img.tls!.memsz).toBeGreaterThanOrEqual(img.tls!.filesz);
    expect(img.relro).toBeDefined();
    expect(img.gnuStack).toEqual({ executable: false });
    expect(isGlibcProgram(f)).toBe(true);
  });

  it('parses a glibc -static-pie program as dyn', () => {
    const f = compile('glibcpie', glibcSource, ['-static-pie', '-O2']);
    if (!f) return;
    const path = join(dir, 'glibcpie');
    const img = parseElf(f, { memSize: MEM });
    expect(img.type).toBe('dyn');
    expect(img.entry).toBe(symbol(path, '_start'));
    checkAgainstReadelf(img, path);
    expect(img.loads[0]!.vaddr).toBe(0);
    expect(isGlibcProgram(f)).toBe(true);
  });

  it('rejects glibc -static linked with a 16-byte max-page-size (segments of different permissions share a page)', () => {
    // ld packs segments of different permissions into one page: Linux would map that page with
    // the last segment's permissions and crash, so the parser must refuse it clearly.
    const f = compile('tiny-pages', glibcSource, ['-static', '-O2', '-Wl,-z,common-page-size=0x10,-z,max-page-size=0x10']);
    if (!f) return;
    expectField(f, 'PT_LOAD', /share the page at 0x400000 but need different permissions/);
  });

  it('rejects a dynamically linked program', () => {
    const f = compile('dynamic', glibcSource, ['-O2']);
    if (!f) return;
    expectField(f, 'PT_INTERP', /link with -static \(PT_INTERP requests \/.*ld-linux.*\)/);
  });
});
