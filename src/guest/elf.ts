/**
 * ELF64 parser and validator for static x86-64 Linux programs.
 *
 * Pure: it reads the file through one DataView over the caller's bytes (no copy), checks every
 * field the loader relies on, and returns the decoded image. Each defect is an `ElfError` whose
 * `field` names the header field or table at fault and whose message says what was found and
 * what was expected.
 *
 * Accepted: ET_EXEC, and ET_DYN without PT_INTERP (static-PIE, reported as `type: 'dyn'`; all
 * addresses in the image are then offsets from a load base the loader picks). Anything with a
 * PT_INTERP is dynamically linked and rejected.
 *
 * Number convention: every address, offset and size in the result is a JS `number` (user
 * addresses are below 2^47 and files are far below 2^53; values that do not fit are rejected),
 * except `entry`, which is a `bigint` because it goes straight into `rip`.
 */
import { ElfError } from './errors.js';

// ---------------------------------------------------------------------------------------------
// Constants

export const ELF_HEADER_SIZE = 64;
export const ELF_PHDR_SIZE = 56;
/** The page size the loader maps with (x86-64 4 KiB pages). */
export const ELF_PAGE_SIZE = 4096;
/** Lowest address a segment may start at: page 0 stays unmapped so null dereferences fault. */
export const MIN_VADDR = ELF_PAGE_SIZE;
/** Top of the x86-64 Linux user address space with 4-level paging (TASK_SIZE_MAX). */
export const DEFAULT_USER_TOP = 0x7ffffffff000n;
/** Linux refuses program header tables above 64 KiB (fs/binfmt_elf.c, load_elf_phdrs). */
export const MAX_PHNUM = Math.floor(65536 / ELF_PHDR_SIZE);
/** e_phnum value meaning "the real count is in section header 0" (not supported). */
export const PN_XNUM = 0xffff;

export const ELFMAG = [0x7f, 0x45, 0x4c, 0x46] as const; // "\x7fELF"
export const EI_CLASS = 4;
export const EI_DATA = 5;
export const EI_VERSION = 6;
export const EI_OSABI = 7;
export const ELFCLASS32 = 1;
export const ELFCLASS64 = 2;
export const ELFDATA2LSB = 1;
export const ELFDATA2MSB = 2;
export const EV_CURRENT = 1;
export const ELFOSABI_NONE = 0;
export const ELFOSABI_GNU = 3;

export const ET_NONE = 0;
export const ET_REL = 1;
export const ET_EXEC = 2;
export const ET_DYN = 3;
export const ET_CORE = 4;

export const EM_386 = 3;
export const EM_X86_64 = 62;
export const EM_AARCH64 = 183;

export const PT_NULL = 0;
export const PT_LOAD = 1;
export const PT_DYNAMIC = 2;
export const PT_INTERP = 3;
export const PT_NOTE = 4;
export const PT_SHLIB = 5;
export const PT_PHDR = 6;
export const PT_TLS = 7;
export const PT_GNU_EH_FRAME = 0x6474e550;
export const PT_GNU_STACK = 0x6474e551;
export const PT_GNU_RELRO = 0x6474e552;
export const PT_GNU_PROPERTY = 0x6474e553;

/** ELF segment permission bits (p_flags). Note the order differs from PROT. */
export const PF_X = 1;
export const PF_W = 2;
export const PF_R = 4;

/** Page protection bits as the loader and page tables use them (same values as mmap's PROT_*). */
export const PROT = { READ: 1, WRITE: 2, EXEC: 4 } as const;

// ---------------------------------------------------------------------------------------------
// Types

/** One entry of the program header table, decoded as is (only PT_LOAD entries are validated). */
export interface ProgramHeader {
  /** Position in the program header table. */
  index: number;
  /** p_type (PT_*). */
  type: number;
  /** p_flags, raw ELF bits (PF_*). */
  flags: number;
  offset: number;
  vaddr: number;
  paddr: number;
  filesz: number;
  memsz: number;
  align: number;
}

/** A validated PT_LOAD with p_memsz > 0. */
export interface LoadSegment {
  /** Position of this PT_LOAD in the program header table. */
  index: number;
  vaddr: number;
  memsz: number;
  filesz: number;
  offset: number;
  /** PROT.READ | PROT.WRITE | PROT.EXEC, decoded from p_flags. */
  prot: number;
  align: number;
  /** vaddr rounded down to a page. */
  pageStart: number;
  /** vaddr + memsz rounded up to a page. A boundary page may be shared with the neighbouring
   *  segment (same prot only; the linker does that with small max-page-size). */
  pageEnd: number;
}

export interface TlsTemplate {
  vaddr: number;
  filesz: number;
  memsz: number;
  align: number;
}

export interface ElfImage {
  /** 'exec': loaded at its own addresses. 'dyn': static-PIE; addresses are offsets from a base. */
  type: 'exec' | 'dyn';
  entry: bigint;
  /** Every program header, in table order. */
  phdrs: ProgramHeader[];
  /** PT_LOAD segments with memory (p_memsz > 0), sorted by vaddr, non-overlapping. */
  loads: LoadSegment[];
  /** Guest virtual address of the program header table (AT_PHDR): from PT_PHDR, else from the
   *  PT_LOAD whose file data contains it. Undefined when no segment maps the table (e.g.
   *  `ld -N` output); the loader must then place a copy itself if it passes AT_PHDR. */
  phdrVaddr: number | undefined;
  phnum: number;
  phentsize: number;
  tls?: TlsTemplate;
  /** From PT_GNU_STACK; absent when the file has none. */
  gnuStack?: { executable: boolean };
  /** From PT_GNU_RELRO: the range the program makes read-only after start-up (informational;
   *  static glibc calls mprotect on it itself). */
  relro?: { vaddr: number; memsz: number };
  /** Byte end of the highest segment (vaddr + memsz), not page-rounded; brk starts at its
   *  page-rounded value. */
  highestAddress: number;
}

export interface ParseElfOptions {
  /** Guest physical memory size in bytes: the segments must fit in it. */
  memSize: number;
  /** Exclusive upper limit of user addresses; default DEFAULT_USER_TOP. */
  userTop?: bigint;
}

// ---------------------------------------------------------------------------------------------
// Names for messages

const MACHINE_NAMES: Record<number, string> = {
  0: 'EM_NONE', 2: 'EM_SPARC', 3: 'EM_386', 8: 'EM_MIPS', 20: 'EM_PPC', 21: 'EM_PPC64', 22: 'EM_S390',
  40: 'EM_ARM', 43: 'EM_SPARCV9', 50: 'EM_IA_64', 62: 'EM_X86_64', 183: 'EM_AARCH64', 243: 'EM_RISCV',
  258: 'EM_LOONGARCH',
};

const TYPE_NAMES: Record<number, string> = {
  [ET_NONE]: 'ET_NONE, no file type',
  [ET_REL]: 'ET_REL, a relocatable object file: link it into an executable',
  [ET_EXEC]: 'ET_EXEC',
  [ET_DYN]: 'ET_DYN',
  [ET_CORE]: 'ET_CORE, a core dump',
};

const OSABI_NAMES: Record<number, string> = {
  0: 'System V', 1: 'HP-UX', 2: 'NetBSD', 3: 'GNU/Linux', 6: 'Solaris', 7: 'AIX', 8: 'IRIX',
  9: 'FreeBSD', 12: 'OpenBSD',
};

const PT_NAMES: Record<number, string> = {
  [PT_NULL]: 'PT_NULL', [PT_LOAD]: 'PT_LOAD', [PT_DYNAMIC]: 'PT_DYNAMIC', [PT_INTERP]: 'PT_INTERP',
  [PT_NOTE]: 'PT_NOTE', [PT_SHLIB]: 'PT_SHLIB', [PT_PHDR]: 'PT_PHDR', [PT_TLS]: 'PT_TLS',
  [PT_GNU_EH_FRAME]: 'PT_GNU_EH_FRAME', [PT_GNU_STACK]: 'PT_GNU_STACK', [PT_GNU_RELRO]: 'PT_GNU_RELRO',
  [PT_GNU_PROPERTY]: 'PT_GNU_PROPERTY',
};

/** "PT_LOAD", or "0x6474e554" for types without a name here. */
export function programHeaderTypeName(type: number): string {
  return PT_NAMES[type] ?? `0x${type.toString(16)}`;
}

/** "R-X" style rendering of PROT bits. */
export function formatProt(prot: number): string {
  return (prot & PROT.READ ? 'R' : '-') + (prot & PROT.WRITE ? 'W' : '-') + (prot & PROT.EXEC ? 'X' : '-');
}

function hex(v: number | bigint): string {
  return `0x${v.toString(16)}`;
}

function named(value: number, names: Record<number, string>): string {
  const name = names[value];
  return name === undefined ? `${value}` : `${value} (${name})`;
}

function sizeText(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${bytes} bytes` : `${bytes} bytes (${Number(v.toFixed(1))} ${units[u]})`;
}

// ---------------------------------------------------------------------------------------------
// Parser

const PAGE = BigInt(ELF_PAGE_SIZE);
const U64_MAX = (1n << 64n) - 1n;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function pageDown(v: bigint): bigint {
  return v & ~(PAGE - 1n);
}
function pageUp(v: bigint): bigint {
  return (v + PAGE - 1n) & ~(PAGE - 1n);
}
function isPowerOfTwo(v: bigint): boolean {
  return v > 0n && (v & (v - 1n)) === 0n;
}

interface RawPhdr {
  index: number;
  type: number;
  flags: number;
  offset: bigint;
  vaddr: bigint;
  paddr: bigint;
  filesz: bigint;
  memsz: bigint;
  align: bigint;
}

function segName(p: RawPhdr): string {
  return `segment ${p.index} (${programHeaderTypeName(p.type)})`;
}

function protOf(flags: number): number {
  return (flags & PF_R ? PROT.READ : 0) | (flags & PF_W ? PROT.WRITE : 0) | (flags & PF_X ? PROT.EXEC : 0);
}

function toNumber(v: bigint, field: string, what: string): number {
  if (v > MAX_SAFE) throw new ElfError(field, `${what} is ${hex(v)}, too large to be a user address, file offset or size`);
  return Number(v);
}

function describeMagic(file: Uint8Array): string {
  const n = Math.min(4, file.length);
  const bytes = Array.from(file.subarray(0, n), (b) => b.toString(16).padStart(2, '0')).join(' ');
  let hint = 'not an ELF file';
  if (file[0] === 0x23 && file[1] === 0x21) hint = 'this is a script (#!), not an ELF program';
  else if (file[0] === 0x4d && file[1] === 0x5a) hint = 'this is a Windows PE/COFF (MZ) file, not an ELF program';
  return `e_ident[EI_MAG] is ${bytes}, expected 7f 45 4c 46 ("\\x7fELF"): ${hint}`;
}

/**
 * Parses and validates a static x86-64 Linux executable. Throws ElfError on any defect.
 * Does not copy `file`; the returned image holds no reference to it either.
 */
export function parseElf(file: Uint8Array, opts: ParseElfOptions): ElfImage {
  const len = file.length;
  const userTopBig = opts.userTop ?? DEFAULT_USER_TOP;
  if (userTopBig <= PAGE || userTopBig > MAX_SAFE || userTopBig % PAGE !== 0n) {
    throw new RangeError(`parseElf: userTop ${hex(userTopBig)} must be page-aligned, above one page and below 2^53`);
  }

  // --- e_ident: check what is there before complaining about length, so that a short
  // non-ELF or 32-bit file gets the more useful message.
  for (let i = 0; i < Math.min(4, len); i++) {
    if (file[i] !== ELFMAG[i]) throw new ElfError('e_ident[EI_MAG]', describeMagic(file));
  }
  if (len > EI_CLASS && file[EI_CLASS] !== ELFCLASS64) {
    const c = file[EI_CLASS]!;
    throw new ElfError(
      'e_ident[EI_CLASS]',
      c === ELFCLASS32
        ? `e_ident[EI_CLASS] is 1 (ELFCLASS32): 32-bit programs are not supported, expected 2 (ELFCLASS64)`
        : `e_ident[EI_CLASS] is ${c}, expected 2 (ELFCLASS64)`,
    );
  }
  if (len < ELF_HEADER_SIZE) {
    throw new ElfError('file', `truncated: ${len} bytes, ELF header needs ${ELF_HEADER_SIZE}`);
  }
  const dv = new DataView(file.buffer, file.byteOffset, file.byteLength);

  const data = file[EI_DATA]!;
  if (data !== ELFDATA2LSB) {
    throw new ElfError(
      'e_ident[EI_DATA]',
      data === ELFDATA2MSB
        ? `e_ident[EI_DATA] is 2 (ELFDATA2MSB, big-endian), expected 1 (ELFDATA2LSB, little-endian)`
        : `e_ident[EI_DATA] is ${data}, expected 1 (ELFDATA2LSB, little-endian)`,
    );
  }
  const identVersion = file[EI_VERSION]!;
  if (identVersion !== EV_CURRENT) {
    throw new ElfError('e_ident[EI_VERSION]', `e_ident[EI_VERSION] is ${identVersion}, expected 1 (EV_CURRENT)`);
  }
  const osabi = file[EI_OSABI]!;
  if (osabi !== ELFOSABI_NONE && osabi !== ELFOSABI_GNU) {
    throw new ElfError(
      'e_ident[EI_OSABI]',
      `e_ident[EI_OSABI] is ${named(osabi, OSABI_NAMES)}, expected 0 (System V) or 3 (GNU/Linux): not a Linux program`,
    );
  }

  // --- fixed header fields
  const eType = dv.getUint16(16, true);
  const eMachine = dv.getUint16(18, true);
  const eVersion = dv.getUint32(20, true);
  const eEntry = dv.getBigUint64(24, true);
  const ePhoff = dv.getBigUint64(32, true);
  const eEhsize = dv.getUint16(52, true);
  const ePhentsize = dv.getUint16(54, true);
  const ePhnum = dv.getUint16(56, true);

  if (eMachine !== EM_X86_64) {
    throw new ElfError('e_machine', `e_machine is ${named(eMachine, MACHINE_NAMES)}, expected 62 (EM_X86_64)`);
  }
  if (eType !== ET_EXEC && eType !== ET_DYN) {
    throw new ElfError(
      'e_type',
      `e_type is ${eType} (${TYPE_NAMES[eType] ?? 'unknown'}), expected 2 (ET_EXEC) or 3 (ET_DYN, static-PIE)`,
    );
  }
  if (eVersion !== EV_CURRENT) {
    throw new ElfError('e_version', `e_version is ${eVersion}, expected 1 (EV_CURRENT)`);
  }
  if (eEhsize !== ELF_HEADER_SIZE) {
    throw new ElfError('e_ehsize', `e_ehsize is ${eEhsize}, expected ${ELF_HEADER_SIZE}`);
  }

  // --- program header table
  if (ePhnum === 0) {
    throw new ElfError('e_phnum', `e_phnum is 0, expected at least 1: the file has no program headers, so nothing to load`);
  }
  if (ePhnum === PN_XNUM) {
    throw new ElfError('e_phnum', `e_phnum is 65535 (PN_XNUM, extended numbering), which is not supported`);
  }
  if (ePhnum > MAX_PHNUM) {
    throw new ElfError('e_phnum', `e_phnum is ${ePhnum}, expected at most ${MAX_PHNUM} (Linux's 64 KiB limit on the table)`);
  }
  if (ePhentsize !== ELF_PHDR_SIZE) {
    throw new ElfError('e_phentsize', `e_phentsize is ${ePhentsize}, expected ${ELF_PHDR_SIZE} (sizeof(Elf64_Phdr))`);
  }
  const tableSize = BigInt(ePhnum * ELF_PHDR_SIZE);
  if (ePhoff < BigInt(ELF_HEADER_SIZE)) {
    throw new ElfError('e_phoff', `e_phoff is ${hex(ePhoff)}, which points into the ELF header; expected at least ${hex(ELF_HEADER_SIZE)}`);
  }
  if (ePhoff + tableSize > BigInt(len)) {
    throw new ElfError(
      'e_phoff',
      `program header table ${hex(ePhoff)}-${hex(ePhoff + tableSize)} (e_phoff + ${ePhnum} × ${ELF_PHDR_SIZE}) ` +
        `extends past the end of the file (${len} bytes): truncated file or bad e_phoff`,
    );
  }
  const phoff = Number(ePhoff);

  const raw: RawPhdr[] = [];
  for (let i = 0; i < ePhnum; i++) {
    const o = phoff + i * ELF_PHDR_SIZE;
    raw.push({
      index: i,
      type: dv.getUint32(o, true),
      flags: dv.getUint32(o + 4, true),
      offset: dv.getBigUint64(o + 8, true),
      vaddr: dv.getBigUint64(o + 16, true),
      paddr: dv.getBigUint64(o + 24, true),
      filesz: dv.getBigUint64(o + 32, true),
      memsz: dv.getBigUint64(o + 40, true),
      align: dv.getBigUint64(o + 48, true),
    });
  }

  // --- dynamic linking is the most common reason a program cannot run: say so first
  const interp = raw.find((p) => p.type === PT_INTERP);
  if (interp) {
    let requested = '';
    if (interp.filesz > 0n && interp.filesz <= 4096n && interp.offset + interp.filesz <= BigInt(len)) {
      const bytes = file.subarray(Number(interp.offset), Number(interp.offset + interp.filesz));
      const nul = bytes.indexOf(0);
      const path = String.fromCharCode(...(nul < 0 ? bytes : bytes.subarray(0, nul)));
      if (/^[\x20-\x7e]+$/.test(path)) requested = ` (PT_INTERP requests ${path})`;
    }
    throw new ElfError('PT_INTERP', `dynamically linked programs are not supported; link with -static${requested}`);
  }

  const isExec = eType === ET_EXEC;
  const fileLen = BigInt(len);
  // For static-PIE the loader adds a base of at least one page, so the image must fit below that.
  const vaddrLimit = isExec ? userTopBig : userTopBig - BigInt(MIN_VADDR);

  // --- each PT_LOAD on its own
  const loads: LoadSegment[] = [];
  let loadCount = 0;
  for (const p of raw) {
    if (p.type !== PT_LOAD) continue;
    loadCount++;
    const seg = segName(p);
    if (p.align > 1n && !isPowerOfTwo(p.align)) {
      throw new ElfError('p_align', `${seg}: p_align is ${hex(p.align)}, expected 0, 1 or a power of two`);
    }
    if (p.filesz > p.memsz) {
      throw new ElfError('p_filesz', `${seg}: p_filesz ${hex(p.filesz)} is larger than p_memsz ${hex(p.memsz)}, expected p_filesz <= p_memsz`);
    }
    if (p.filesz > 0n) {
      if (p.offset >= fileLen) {
        throw new ElfError('p_offset', `${seg}: p_offset ${hex(p.offset)} is past the end of the file (${len} bytes)`);
      }
      if (p.offset + p.filesz > fileLen) {
        throw new ElfError(
          'p_filesz',
          `${seg}: file data ${hex(p.offset)}-${hex(p.offset + p.filesz)} (p_offset + p_filesz) extends past ` +
            `the end of the file (${len} bytes): the file is truncated`,
        );
      }
    }
    if (p.vaddr + p.memsz > U64_MAX) {
      throw new ElfError('p_memsz', `${seg}: p_vaddr ${hex(p.vaddr)} + p_memsz ${hex(p.memsz)} overflows 64 bits`);
    }
    if (p.memsz > 0n) {
      if (isExec && p.vaddr < BigInt(MIN_VADDR)) {
        throw new ElfError(
          'p_vaddr',
          `${seg}: p_vaddr is ${hex(p.vaddr)}, expected at least ${hex(MIN_VADDR)} (page 0 must stay unmapped)`,
        );
      }
      if (pageUp(p.vaddr + p.memsz) > vaddrLimit) {
        throw new ElfError(
          'p_vaddr',
          `${seg}: ${hex(p.vaddr)}-${hex(p.vaddr + p.memsz)} (p_vaddr + p_memsz) is outside user space, ` +
            `expected it to end at or below ${hex(vaddrLimit)}`,
        );
      }
    }
    if (p.align > 1n && p.offset % p.align !== p.vaddr % p.align) {
      throw new ElfError(
        'p_offset',
        `${seg}: p_offset ${hex(p.offset)} and p_vaddr ${hex(p.vaddr)} differ modulo p_align ${hex(p.align)} ` +
          `(${hex(p.offset % p.align)} vs ${hex(p.vaddr % p.align)}), expected them congruent`,
      );
    }
    if (p.memsz === 0n) continue; // maps nothing
    const vaddr = Number(p.vaddr);
    const memsz = Number(p.memsz);
    loads.push({
      index: p.index,
      vaddr,
      memsz,
      filesz: Number(p.filesz),
      offset: p.filesz > 0n ? Number(p.offset) : toNumber(p.offset, 'p_offset', `${seg}: p_offset`),
      prot: protOf(p.flags),
      align: toNumber(p.align, 'p_align', `${seg}: p_align`),
      pageStart: Number(pageDown(p.vaddr)),
      pageEnd: Number(pageUp(p.vaddr + p.memsz)),
    });
  }
  if (loads.length === 0) {
    throw new ElfError(
      'PT_LOAD',
      loadCount === 0
        ? `no PT_LOAD segment among ${ePhnum} program headers, expected at least one: nothing to load`
        : `all ${loadCount} PT_LOAD segments have p_memsz 0, expected at least one with memory: nothing to load`,
    );
  }

  // --- segments together: no overlap, and shared boundary pages only with equal permissions
  loads.sort((a, b) => a.vaddr - b.vaddr);
  let pagesBytes = 0;
  let mappedEnd = 0;
  for (let i = 0; i < loads.length; i++) {
    const b = loads[i]!;
    if (i > 0) {
      const a = loads[i - 1]!;
      const range = (s: LoadSegment) => `segment ${s.index} ${hex(s.vaddr)}-${hex(s.vaddr + s.memsz)} ${formatProt(s.prot)}`;
      if (a.vaddr + a.memsz > b.vaddr) {
        throw new ElfError('PT_LOAD', `PT_LOAD segments overlap: ${range(a)} and ${range(b)}`);
      }
      if (a.pageEnd > b.pageStart && a.prot !== b.prot) {
        throw new ElfError(
          'PT_LOAD',
          `PT_LOAD segments share the page at ${hex(b.pageStart)} but need different permissions: ` +
            `${range(a)} and ${range(b)} (link with the default -z max-page-size)`,
        );
      }
    }
    pagesBytes += b.pageEnd - Math.max(b.pageStart, Math.min(mappedEnd, b.pageEnd));
    mappedEnd = Math.max(mappedEnd, b.pageEnd);
  }
  if (pagesBytes > opts.memSize) {
    throw new ElfError(
      'p_memsz',
      `segments need ${sizeText(pagesBytes)}, guest memory is ${sizeText(opts.memSize)} (raise --mem-size)`,
    );
  }
  const highestAddress = Math.max(...loads.map((s) => s.vaddr + s.memsz));
  const containing = (addr: number, size: number): LoadSegment | undefined =>
    loads.find((s) => addr >= s.vaddr && addr + size <= s.vaddr + s.memsz);

  // --- entry point
  const entryLoad = loads.find((s) => s.prot & PROT.EXEC && eEntry >= BigInt(s.vaddr) && eEntry < BigInt(s.vaddr + s.memsz));
  if (!entryLoad) {
    const execs = loads.filter((s) => s.prot & PROT.EXEC).map((s) => `${hex(s.vaddr)}-${hex(s.vaddr + s.memsz)}`);
    const hint = !isExec && eEntry === 0n ? '; an ET_DYN with e_entry 0 is a shared library, not a program' : '';
    throw new ElfError(
      'e_entry',
      `e_entry ${hex(eEntry)} is not inside an executable PT_LOAD segment ` +
        `(executable segments: ${execs.length ? execs.join(', ') : 'none'})${hint}`,
    );
  }

  // --- all program headers as numbers (non-LOAD entries are taken as they are)
  const phdrs: ProgramHeader[] = raw.map((p) => {
    const seg = segName(p);
    return {
      index: p.index,
      type: p.type,
      flags: p.flags,
      offset: toNumber(p.offset, 'p_offset', `${seg}: p_offset`),
      vaddr: toNumber(p.vaddr, 'p_vaddr', `${seg}: p_vaddr`),
      paddr: toNumber(p.paddr, 'p_paddr', `${seg}: p_paddr`),
      filesz: toNumber(p.filesz, 'p_filesz', `${seg}: p_filesz`),
      memsz: toNumber(p.memsz, 'p_memsz', `${seg}: p_memsz`),
      align: toNumber(p.align, 'p_align', `${seg}: p_align`),
    };
  });

  // --- where the program finds its own program headers (AT_PHDR)
  let phdrVaddr: number | undefined;
  const ptPhdr = phdrs.find((p) => p.type === PT_PHDR);
  if (ptPhdr) {
    if (!containing(ptPhdr.vaddr, ptPhdr.memsz)) {
      throw new ElfError(
        'PT_PHDR',
        `PT_PHDR ${hex(ptPhdr.vaddr)}-${hex(ptPhdr.vaddr + ptPhdr.memsz)} is not inside any PT_LOAD segment`,
      );
    }
    phdrVaddr = ptPhdr.vaddr;
  } else {
    const tableEnd = phoff + ePhnum * ELF_PHDR_SIZE;
    const holder = loads.find((s) => s.filesz > 0 && s.offset <= phoff && tableEnd <= s.offset + s.filesz);
    if (holder) phdrVaddr = holder.vaddr + (phoff - holder.offset);
  }

  // --- TLS template
  let tls: TlsTemplate | undefined;
  const tlsHeaders = phdrs.filter((p) => p.type === PT_TLS);
  if (tlsHeaders.length > 1) {
    throw new ElfError('PT_TLS', `${tlsHeaders.length} PT_TLS program headers, expected at most one`);
  }
  const t = tlsHeaders[0];
  if (t) {
    if (t.filesz > t.memsz) {
      throw new ElfError('PT_TLS', `PT_TLS p_filesz ${hex(t.filesz)} is larger than p_memsz ${hex(t.memsz)}`);
    }
    if (t.align > 1 && !isPowerOfTwo(BigInt(t.align))) {
      throw new ElfError('PT_TLS', `PT_TLS p_align is ${hex(t.align)}, expected 0, 1 or a power of two`);
    }
    if (t.filesz > 0 && !containing(t.vaddr, t.filesz)) {
      throw new ElfError(
        'PT_TLS',
        `PT_TLS initialization image ${hex(t.vaddr)}-${hex(t.vaddr + t.filesz)} is not inside any PT_LOAD segment`,
      );
    }
    tls = { vaddr: t.vaddr, filesz: t.filesz, memsz: t.memsz, align: t.align };
  }

  const stack = phdrs.find((p) => p.type === PT_GNU_STACK);
  const relroHeader = phdrs.find((p) => p.type === PT_GNU_RELRO);

  const image: ElfImage = {
    type: isExec ? 'exec' : 'dyn',
    entry: eEntry,
    phdrs,
    loads,
    phdrVaddr,
    phnum: ePhnum,
    phentsize: ePhentsize,
    highestAddress,
  };
  if (tls) image.tls = tls;
  if (stack) image.gnuStack = { executable: (stack.flags & PF_X) !== 0 };
  if (relroHeader) image.relro = { vaddr: relroHeader.vaddr, memsz: relroHeader.memsz };
  return image;
}

// ---------------------------------------------------------------------------------------------
// glibc detection

const GLIBC_MARKERS = ['GLIBC_TUNABLES', 'glibc.cpu.hwcaps', 'GNU C Library'];

/**
 * Heuristic, not a proof: true when the file contains a string that glibc links into every
 * program (the tunables environment variable name, a tunable name, or the library banner).
 * Used only to decide whether to set GLIBC_TUNABLES for the guest, where a false positive
 * costs nothing. Searches the bytes in place (no copy).
 */
export function isGlibcProgram(file: Uint8Array): boolean {
  const buf = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
  return GLIBC_MARKERS.some((m) => buf.indexOf(m, 0, 'latin1') >= 0);
}
