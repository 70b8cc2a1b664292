/**
 * String instructions: movs, stos, lods, cmps, scas in 1/2/4/8-byte forms, with rep (and for
 * cmps/scas repe/repne). rsi/rdi step by the element size in the direction DF gives; rcx counts
 * (a zero count does nothing). A fault stops the instruction with rcx/rsi/rdi describing the
 * elements already done and rip still on the instruction, exactly what re-execution needs.
 *
 * `rep movs`/`rep stos` with DF = 0 copy or fill page-bounded chunks at a time; a chunk never
 * crosses a page on either side, so the first inaccessible byte faults with the registers at
 * that element, as the element-by-element loop would leave them.
 */
import { Mnemonic } from 'iced-x86';
import { Gpr } from '../../guest/threadContext.js';
import { DF, type CpuState } from '../state.js';
import type { DecodeInfo } from '../decodeInfo.js';
import { defineForms, define, NotImplemented, type Exec } from './registry.js';
import { prefixes, recordSub, recordSub64, TWO32 } from './int-common.js';

const RAX = Gpr.rax * 2;
const RCX = Gpr.rcx * 2;
const RSI = Gpr.rsi * 2;
const RDI = Gpr.rdi * 2;
const PAGE = 4096;
const TWO64 = 2 ** 64;
/** Addresses below this never wrap while a chunk is added (user space is below 2^47). */
const FAST_LIMIT = 2 ** 47;

type Kind = 'movs' | 'stos' | 'lods' | 'cmps' | 'scas';
type Rep = 'none' | 'rep' | 'repe' | 'repne';

const buf = new Uint8Array(PAGE);
const bufView = new DataView(buf.buffer);

function reg64(s: CpuState, r: number): number {
  return (s.g[r + 1]! >>> 0) * TWO32 + (s.g[r]! >>> 0);
}

/** reg += delta (a signed double, |delta| < 2^53), modulo 2^64 or, with 32-bit addressing, 2^32. */
function addReg(s: CpuState, r: number, delta: number, addr32: boolean): void {
  if (delta === 0) return;
  if (addr32) {
    let v = ((s.g[r]! >>> 0) + delta) % TWO32;
    if (v < 0) v += TWO32;
    s.g[r] = v;
    s.g[r + 1] = 0;
    return;
  }
  const lo = (s.g[r]! >>> 0) + delta;
  const carry = Math.floor(lo / TWO32);
  s.g[r] = lo - carry * TWO32;
  s.g[r + 1] = ((s.g[r + 1]! >>> 0) + carry) >>> 0;
}

function wrapAddr(a: number, addr32: boolean): number {
  if (addr32) {
    a %= TWO32;
    return a < 0 ? a + TWO32 : a;
  }
  if (a < 0) return a + TWO64;
  if (a >= TWO64) return a - TWO64;
  return a;
}

function read(s: CpuState, addr: number, size: number): number {
  const m = s.mem;
  switch (size) {
    case 1:
      return m.read8(addr);
    case 2:
      return m.read16(addr);
    case 4:
      return m.read32(addr);
    default: {
      const lo = m.read64(addr);
      s.hi = m.hi;
      return lo;
    }
  }
}

function write(s: CpuState, addr: number, size: number, lo: number, hi: number): void {
  const m = s.mem;
  switch (size) {
    case 1:
      m.write8(addr, lo & 0xff);
      break;
    case 2:
      m.write16(addr, lo & 0xffff);
      break;
    case 4:
      m.write32(addr, lo >>> 0);
      break;
    default:
      m.write64(addr, lo >>> 0, hi >>> 0);
  }
}

function setAcc(s: CpuState, size: number, lo: number, hi: number): void {
  const g = s.g;
  switch (size) {
    case 1:
      g[RAX] = (g[RAX]! & ~0xff) | (lo & 0xff);
      break;
    case 2:
      g[RAX] = (g[RAX]! & ~0xffff) | (lo & 0xffff);
      break;
    case 4:
      g[RAX] = lo;
      g[RAX + 1] = 0;
      break;
    default:
      g[RAX] = lo;
      g[RAX + 1] = hi;
  }
}

function accLo(s: CpuState, size: number): number {
  const v = s.g[RAX]! >>> 0;
  return size === 1 ? v & 0xff : size === 2 ? v & 0xffff : v;
}

interface Spec {
  kind: Kind;
  size: number;
  rep: Rep;
  /** fs/gs override of the rsi operand. */
  seg: 'fs' | 'gs' | null;
  addr32: boolean;
}

function segBase(s: CpuState, seg: 'fs' | 'gs' | null): number {
  return seg === 'fs' ? s.fsBase : seg === 'gs' ? s.gsBase : 0;
}

/**
 * The general element-by-element loop (any direction, size, prefix and address size). cmps/scas
 * record their flags only when the instruction completes: a fault part-way through a repeated
 * compare leaves the flags as they were before the instruction, as Intel hardware does.
 */
function slowLoop(spec: Spec): Exec {
  const { kind, size, rep, seg, addr32 } = spec;
  const usesSi = kind === 'movs' || kind === 'lods' || kind === 'cmps';
  const usesDi = kind !== 'lods';
  const compares = kind === 'cmps' || kind === 'scas';
  return (s) => {
    let remaining: number;
    if (rep !== 'none') {
      remaining = addr32 ? s.g[RCX]! >>> 0 : reg64(s, RCX);
      if (remaining === 0) {
        // With 32-bit addressing a zero count still writes ecx (and, for movs/stos, the index
        // registers they store through) as 32-bit registers, as measured on Intel hardware.
        if (addr32) {
          s.g[RCX + 1] = 0;
          if (kind === 'movs') s.g[RSI + 1] = 0;
          if (kind === 'movs' || kind === 'stos') s.g[RDI + 1] = 0;
        }
        return;
      }
    } else {
      remaining = 1;
    }
    const step = s.eflags & DF ? -size : size;
    const si0 = addr32 ? s.g[RSI]! >>> 0 : reg64(s, RSI);
    const di0 = addr32 ? s.g[RDI]! >>> 0 : reg64(s, RDI);
    const base = segBase(s, seg);
    let n = 0;
    // The last comparison's operands.
    let a = 0;
    let ah = 0;
    let b = 0;
    let bh = 0;
    try {
      for (;;) {
        const si = wrapAddr(si0 + n * step, addr32);
        const di = wrapAddr(di0 + n * step, addr32);
        switch (kind) {
          case 'movs': {
            const lo = read(s, wrapAddr(si + base, false), size);
            write(s, di, size, lo, s.hi);
            break;
          }
          case 'stos':
            write(s, di, size, s.g[RAX]! >>> 0, s.g[RAX + 1]! >>> 0);
            break;
          case 'lods': {
            const lo = read(s, wrapAddr(si + base, false), size);
            setAcc(s, size, lo, s.hi);
            break;
          }
          case 'cmps':
            // Intel loads es:[rdi] first (that is the fault reported when both miss).
            b = read(s, di, size);
            bh = s.hi;
            a = read(s, wrapAddr(si + base, false), size);
            ah = s.hi;
            break;
          default:
            b = read(s, di, size);
            bh = s.hi;
            a = size === 8 ? s.g[RAX]! >>> 0 : accLo(s, size);
            ah = s.g[RAX + 1]! >>> 0;
        }
        n++;
        if (--remaining === 0) break;
        if (compares && rep !== 'rep') {
          const equal = a === b && (size !== 8 || ah === bh);
          if (rep === 'repe' ? !equal : equal) break;
        }
      }
    } finally {
      if (usesSi) addReg(s, RSI, n * step, addr32);
      if (usesDi) addReg(s, RDI, n * step, addr32);
      if (rep !== 'none') addReg(s, RCX, -n, addr32);
    }
    if (compares) {
      if (size === 8) recordSub64(s, a, ah, b, bh);
      else recordSub(s, size, a, b);
    }
  };
}

/** rep movs with DF = 0: page-bounded chunk copies; falls back to the loop for anything else. */
function fastMovs(spec: Spec, slow: Exec): Exec {
  const size = spec.size;
  const seg = spec.seg;
  return (s) => {
    if (s.eflags & DF || s.g[RCX + 1]! !== 0) return slow(s);
    let cnt = s.g[RCX]! >>> 0;
    if (cnt === 0) return;
    const base = segBase(s, seg);
    const si0 = reg64(s, RSI);
    const di0 = reg64(s, RDI);
    if (si0 + base >= FAST_LIMIT || di0 >= FAST_LIMIT) return slow(s);
    const mem = s.mem;
    let si = si0 + base;
    let di = di0;
    try {
      while (cnt > 0) {
        let bytes = Math.min(cnt * size, PAGE - (si % PAGE), PAGE - (di % PAGE));
        // A destination just above the source must see its own earlier stores (byte-by-byte
        // semantics): never copy a chunk longer than the distance.
        if (di > si && di - si < bytes) bytes = di - si;
        bytes -= bytes % size;
        if (bytes === 0) {
          // An element straddling a page boundary, or closer overlap than one element.
          const lo = read(s, si, size);
          write(s, di, size, lo, s.hi);
          bytes = size;
        } else {
          mem.readBytes(si, buf, bytes);
          mem.writeBytes(di, buf, bytes);
        }
        si += bytes;
        di += bytes;
        cnt -= bytes / size;
      }
    } finally {
      const done = si - base - si0;
      addReg(s, RSI, done, false);
      addReg(s, RDI, done, false);
      addReg(s, RCX, -done / size, false);
    }
  };
}

/** rep stos with DF = 0: page-bounded fills. */
function fastStos(spec: Spec, slow: Exec): Exec {
  const size = spec.size;
  return (s) => {
    if (s.eflags & DF || s.g[RCX + 1]! !== 0) return slow(s);
    let cnt = s.g[RCX]! >>> 0;
    if (cnt === 0) return;
    const di0 = reg64(s, RDI);
    if (di0 >= FAST_LIMIT) return slow(s);
    // The pattern, element-aligned from the buffer's start.
    const fill = Math.min(cnt * size, PAGE);
    const lo = s.g[RAX]! >>> 0;
    const hi = s.g[RAX + 1]! >>> 0;
    if (size === 1) buf.fill(lo & 0xff, 0, fill);
    else {
      for (let i = 0; i < fill; i += size) {
        if (size === 2) bufView.setUint16(i, lo & 0xffff, true);
        else if (size === 4) bufView.setUint32(i, lo, true);
        else {
          bufView.setUint32(i, lo, true);
          bufView.setUint32(i + 4, hi, true);
        }
      }
    }
    const mem = s.mem;
    let di = di0;
    try {
      while (cnt > 0) {
        let bytes = Math.min(cnt * size, PAGE - (di % PAGE));
        bytes -= bytes % size;
        if (bytes === 0) {
          write(s, di, size, lo, hi);
          bytes = size;
        } else {
          mem.writeBytes(di, buf, bytes);
        }
        di += bytes;
        cnt -= bytes / size;
      }
    } finally {
      const done = di - di0;
      addReg(s, RDI, done, false);
      addReg(s, RCX, -done / size, false);
    }
  };
}

function stringBuilder(kind: Kind, size: number) {
  return (d: DecodeInfo): Exec => {
    if (!d.ops.some((o) => o.kind === 'string')) throw new NotImplemented('not a string instruction form');
    const p = prefixes(d);
    const compares = kind === 'cmps' || kind === 'scas';
    let rep: Rep = 'none';
    if (compares) rep = d.rep ? 'repe' : d.repne ? 'repne' : 'none';
    else if (d.rep || d.repne) rep = 'rep';
    const spec: Spec = { kind, size, rep, seg: p.seg, addr32: p.addr32 };
    const slow = slowLoop(spec);
    if (rep === 'rep' && !p.addr32) {
      if (kind === 'movs') return fastMovs(spec, slow);
      if (kind === 'stos') return fastStos(spec, slow);
    }
    return slow;
  };
}

const SIZES: [number, string][] = [
  [1, 'b'],
  [2, 'w'],
  [4, 'd'],
  [8, 'q'],
];
const KINDS: Kind[] = ['movs', 'stos', 'lods', 'cmps', 'scas'];
const M = Mnemonic as unknown as Record<string, Mnemonic>;
for (const kind of KINDS) {
  for (const [size, suffix] of SIZES) {
    const name = kind[0]!.toUpperCase() + kind.slice(1) + suffix;
    const m = M[name];
    if (m === undefined) throw new Error(`iced-x86 has no mnemonic ${name}`);
    // movsd and cmpsd are also SSE2 scalar-double mnemonics, defined elsewhere.
    if (name === 'Movsd' || name === 'Cmpsd') defineForms(m, stringBuilder(kind, size));
    else define(m, stringBuilder(kind, size));
  }
}
