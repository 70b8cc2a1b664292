/**
 * The rest of the user-level integer ISA: flag-register moves (pushf/popf, lahf/sahf, clc…std),
 * leave/enter, loop/jrcxz, cpuid/rdtsc/rdtscp/rdpid/xgetbv, software interrupts and the #UD
 * opcodes, fences/prefetches/cache flushes, cmpxchg8b/16b, rdrand/rdseed, xlatb.
 */
import { Code, Mnemonic, Register } from 'iced-x86';
import { Gpr, USER_CS, USER_SS } from '../../guest/threadContext.js';
import { GuestException, VEC_BP, VEC_DB, VEC_GP, VEC_OF, VEC_UD } from '../errors.js';
import { arithFlags, readFlags, setEager, writeFlags } from '../flags.js';
import { makeEa, operand } from '../operands.js';
import { CF, DF, ZF, type CpuState } from '../state.js';
import type { DecodeInfo } from '../decodeInfo.js';
import { push64 } from './core.js';
import { define, defineForms, NotImplemented, type Exec } from './registry.js';
import { prefixes, TWO32 } from './int-common.js';
import { pop16, push16 } from './int-move.js';

const RAX = Gpr.rax * 2;
const RCX = Gpr.rcx * 2;
const RDX = Gpr.rdx * 2;
const RBX = Gpr.rbx * 2;
const RSP = Gpr.rsp * 2;
const RBP = Gpr.rbp * 2;

/** RF and VM are never pushed by pushf. */
const PUSHF_MASK = ~0x30000;
/** What popf may change at CPL 3 (IOPL 0): CF PF AF ZF SF TF DF OF NT AC ID; not IF, IOPL, VIP/VIF. */
const POPF_MASK = 0x244dd5;

function reg64(s: CpuState, r: number): number {
  return (s.g[r + 1]! >>> 0) * TWO32 + (s.g[r]! >>> 0);
}

/** reg += delta, modulo 2^64 (|delta| < 2^53). */
function addReg(s: CpuState, r: number, delta: number): void {
  const lo = (s.g[r]! >>> 0) + delta;
  const carry = Math.floor(lo / TWO32);
  s.g[r] = lo - carry * TWO32;
  s.g[r + 1] = ((s.g[r + 1]! >>> 0) + carry) >>> 0;
}

function pop64(s: CpuState): number {
  const lo = s.mem.read64(reg64(s, RSP));
  s.hi = s.mem.hi;
  addReg(s, RSP, 8);
  return lo;
}

// --- flags

define(Mnemonic.Pushfq, () => (s) => push64(s, (readFlags(s) & PUSHF_MASK) >>> 0, 0));
define(Mnemonic.Pushf, () => (s) => push16(s, readFlags(s) & 0xffff));
define(Mnemonic.Popfq, () => (s) => writeFlags(s, pop64(s), POPF_MASK));
define(Mnemonic.Popf, () => (s) => writeFlags(s, pop16(s), POPF_MASK & 0xffff));

/** lahf: AH = SF:ZF:0:AF:0:PF:1:CF. */
define(Mnemonic.Lahf, () => (s) => {
  s.g[RAX] = (s.g[RAX]! & ~0xff00) | ((readFlags(s) & 0xff) << 8);
});
/** sahf: SF ZF AF PF CF from AH. */
define(Mnemonic.Sahf, () => (s) => writeFlags(s, (s.g[RAX]! >>> 8) & 0xff, 0xd5));

define(Mnemonic.Clc, () => (s) => setEager(s, arithFlags(s) & ~CF));
define(Mnemonic.Stc, () => (s) => setEager(s, arithFlags(s) | CF));
define(Mnemonic.Cmc, () => (s) => setEager(s, arithFlags(s) ^ CF));
define(Mnemonic.Cld, () => (s) => {
  s.eflags &= ~DF;
});
define(Mnemonic.Std, () => (s) => {
  s.eflags |= DF;
});

// --- frames

/** leave: rsp = rbp, then pop rbp. The load comes first, so a fault changes nothing. */
define(Mnemonic.Leave, (d) => {
  if (d.code === Code.Leavew) {
    return (s) => {
      const v = s.mem.read16(reg64(s, RBP));
      s.g[RSP] = s.g[RBP]!;
      s.g[RSP + 1] = s.g[RBP + 1]!;
      addReg(s, RSP, 2);
      s.g[RBP] = (s.g[RBP]! & ~0xffff) | v;
    };
  }
  return (s) => {
    const lo = s.mem.read64(reg64(s, RBP));
    const hi = s.mem.hi;
    s.g[RSP] = s.g[RBP]!;
    s.g[RSP + 1] = s.g[RBP + 1]!;
    addReg(s, RSP, 8);
    s.g[RBP] = lo;
    s.g[RBP + 1] = hi;
  };
});

/** enter size, level (64-bit operand size): a new frame, with `level - 1` frame pointers copied. */
define(Mnemonic.Enter, (d) => {
  if (d.code !== Code.Enterq_imm16_imm8) throw new NotImplemented('16-bit enter');
  const a = d.ops[0];
  const b = d.ops[1];
  if (a?.kind !== 'imm' || b?.kind !== 'imm') throw new NotImplemented('enter operands');
  const size = Number(a.value & 0xffffn);
  const level = Number(b.value & 0xffn) & 31;
  return (s) => {
    const sp0 = s.g[RSP]!;
    const sp1 = s.g[RSP + 1]!;
    const bp0 = s.g[RBP]!;
    const bp1 = s.g[RBP + 1]!;
    try {
      push64(s, bp0 >>> 0, bp1 >>> 0);
      const flo = s.g[RSP]!;
      const fhi = s.g[RSP + 1]!;
      if (level > 0) {
        for (let i = 1; i < level; i++) {
          addReg(s, RBP, -8);
          const lo = s.mem.read64(reg64(s, RBP));
          push64(s, lo, s.mem.hi);
        }
        push64(s, flo >>> 0, fhi >>> 0);
      }
      s.g[RBP] = flo;
      s.g[RBP + 1] = fhi;
      addReg(s, RSP, -size);
    } catch (e) {
      s.g[RSP] = sp0;
      s.g[RSP + 1] = sp1;
      s.g[RBP] = bp0;
      s.g[RBP + 1] = bp1;
      throw e;
    }
  };
});

// --- loops

function target(d: DecodeInfo): number {
  const k = d.ops[0];
  if (k?.kind !== 'branch') throw new NotImplemented('loop without a near target');
  return k.target;
}

/** loop/loope/loopne: rcx (ecx with 0x67) -= 1 without touching flags, then branch. */
function loopBuilder(zf: 'any' | 'set' | 'clear') {
  return (d: DecodeInfo): Exec => {
    const t = target(d);
    const next = d.next;
    const addr32 = prefixes(d).addr32;
    return (s) => {
      let nonzero: boolean;
      if (addr32) {
        const v = ((s.g[RCX]! >>> 0) - 1) >>> 0;
        s.g[RCX] = v;
        s.g[RCX + 1] = 0;
        nonzero = v !== 0;
      } else {
        addReg(s, RCX, -1);
        nonzero = s.g[RCX] !== 0 || s.g[RCX + 1] !== 0;
      }
      let take = nonzero;
      if (take && zf !== 'any') {
        const z = (arithFlags(s) & ZF) !== 0;
        take = zf === 'set' ? z : !z;
      }
      s.rip = take ? t : next;
    };
  };
}
define(Mnemonic.Loop, loopBuilder('any'));
define(Mnemonic.Loope, loopBuilder('set'));
define(Mnemonic.Loopne, loopBuilder('clear'));

define(Mnemonic.Jrcxz, (d) => {
  const t = target(d);
  const next = d.next;
  return (s) => {
    s.rip = s.g[RCX] === 0 && s.g[RCX + 1] === 0 ? t : next;
  };
});
define(Mnemonic.Jecxz, (d) => {
  const t = target(d);
  const next = d.next;
  return (s) => {
    s.rip = s.g[RCX] === 0 ? t : next;
  };
});

// --- identification and time

function setReg32(s: CpuState, r: number, v: number): void {
  s.g[r] = v;
  s.g[r + 1] = 0;
}

define(Mnemonic.Cpuid, () => (s) => {
  const e = s.cpuid(s.g[RAX]! >>> 0, s.g[RCX]! >>> 0);
  setReg32(s, RAX, e.eax);
  setReg32(s, RBX, e.ebx);
  setReg32(s, RCX, e.ecx);
  setReg32(s, RDX, e.edx);
});

/**
 * rdtsc: the model's cycle count (one cycle per instruction): instructions retired before the
 * current block. The count is exact at block granularity only (rdtsc does not end a block).
 */
function tsc(s: CpuState): void {
  const t = s.instructions;
  setReg32(s, RAX, t % TWO32);
  setReg32(s, RDX, Math.floor(t / TWO32));
}

define(Mnemonic.Rdtsc, () => tsc);

function hasFeature(s: CpuState, leaf: number, reg: 'ecx' | 'edx' | 'ebx', bit: number): boolean {
  return ((s.cpuid(leaf, 0)[reg] >>> bit) & 1) === 1;
}

/** rdtscp: rdtsc plus IA32_TSC_AUX (0) in ecx; #UD unless CPUID advertises it. */
define(Mnemonic.Rdtscp, () => (s) => {
  if (!hasFeature(s, 0x80000001, 'edx', 27)) throw new GuestException(VEC_UD, 0, 0);
  tsc(s);
  setReg32(s, RCX, 0);
});

/** rdpid: IA32_TSC_AUX (0, as rdtscp reports). */
define(Mnemonic.Rdpid, (d) => {
  const set = operand(d, 0).set;
  return (s) => {
    if (!hasFeature(s, 7, 'ecx', 22)) throw new GuestException(VEC_UD, 0, 0);
    set(s, 0, 0);
  };
});


/** xgetbv: XCR0 for ecx = 0 when CPUID advertises OSXSAVE (else #UD); #GP for other XCRs. */
define(Mnemonic.Xgetbv, () => (s) => {
  if (!hasFeature(s, 1, 'ecx', 27)) throw new GuestException(VEC_UD, 0, 0);
  if ((s.g[RCX]! >>> 0) !== 0) throw new GuestException(VEC_GP, 0, 0);
  setReg32(s, RAX, s.xcr0);
  setReg32(s, RDX, 0);
});

// --- software interrupts and invalid opcodes

/**
 * Traps report the address of the next instruction (carried in `address`, see errors.ts).
 * int3 and `int 3`/`int 4` go through DPL-3 gates; every other `int n` meets a DPL-0 gate and
 * raises #GP with the IDT error code (n << 3) | 2, which Linux turns into SIGSEGV.
 */
define(Mnemonic.Int3, (d) => {
  const next = d.next;
  return () => {
    throw new GuestException(VEC_BP, 0, next);
  };
});

define(Mnemonic.Int1, (d) => {
  const next = d.next;
  return () => {
    throw new GuestException(VEC_DB, 0, next);
  };
});

define(Mnemonic.Int, (d) => {
  const k = d.ops[0];
  if (k?.kind !== 'imm') throw new NotImplemented('int without an immediate');
  const n = Number(k.value & 0xffn);
  const next = d.next;
  if (n === 3 || n === VEC_OF) {
    return () => {
      throw new GuestException(n, 0, next);
    };
  }
  const code = (n << 3) | 2;
  return () => {
    throw new GuestException(VEC_GP, code, 0);
  };
});

define([Mnemonic.Ud0, Mnemonic.Ud1], () => () => {
  throw new GuestException(VEC_UD, 0, 0);
});

// --- ordering, prefetch and cache control: nothing to do in a functional model

define(
  [
    Mnemonic.Lfence, Mnemonic.Mfence, Mnemonic.Sfence, Mnemonic.Prefetchnta, Mnemonic.Prefetcht0,
    Mnemonic.Prefetcht1, Mnemonic.Prefetcht2, Mnemonic.Prefetchw, Mnemonic.Prefetchwt1, Mnemonic.Prefetch,
    Mnemonic.Reservednop,
  ],
  () => () => {},
);

/** clflush and friends fault like a read of the byte (no prefetch-like silence). */
define([Mnemonic.Clflush, Mnemonic.Clflushopt, Mnemonic.Clwb], (d) => {
  if (!d.mem) throw new NotImplemented('cache flush without a memory operand');
  const ea = makeEa(d.mem);
  return (s) => {
    s.mem.read8(ea(s));
  };
});

// --- cmpxchg8b / cmpxchg16b

/** Compares rdx:rax (edx:eax) with memory; equal: store rcx:rbx, ZF = 1; else load it, ZF = 0. */
define(Mnemonic.Cmpxchg8b, (d) => {
  if (!d.mem) throw new NotImplemented('cmpxchg8b without memory');
  const ea = makeEa(d.mem);
  return (s) => {
    const addr = ea(s);
    const lo = s.mem.rmw64(addr);
    const hi = s.mem.hi;
    const equal = lo === s.g[RAX]! >>> 0 && hi === s.g[RDX]! >>> 0;
    if (equal) {
      s.mem.write64(addr, s.g[RBX]! >>> 0, s.g[RCX]! >>> 0);
    } else {
      s.mem.write64(addr, lo, hi);
      setReg32(s, RAX, lo);
      setReg32(s, RDX, hi);
    }
    setEager(s, (arithFlags(s) & ~ZF) | (equal ? ZF : 0));
  };
});

define(Mnemonic.Cmpxchg16b, (d) => {
  if (!d.mem) throw new NotImplemented('cmpxchg16b without memory');
  const ea = makeEa(d.mem);
  return (s) => {
    const addr = ea(s);
    if (addr % 16 !== 0) throw new GuestException(VEC_GP, 0, 0);
    const m = s.mem;
    const l0 = m.rmw64(addr);
    const h0 = m.hi;
    const l1 = m.rmw64(addr + 8);
    const h1 = m.hi;
    const g = s.g;
    const equal = l0 === g[RAX]! >>> 0 && h0 === g[RAX + 1]! >>> 0 && l1 === g[RDX]! >>> 0 && h1 === g[RDX + 1]! >>> 0;
    // 16-byte aligned: one page, so probing the first half's page covers both stores.
    m.probeWrite(addr, 16);
    if (equal) {
      m.write64(addr, g[RBX]! >>> 0, g[RBX + 1]! >>> 0);
      m.write64(addr + 8, g[RCX]! >>> 0, g[RCX + 1]! >>> 0);
    } else {
      m.write64(addr, l0, h0);
      m.write64(addr + 8, l1, h1);
      g[RAX] = l0;
      g[RAX + 1] = h0;
      g[RDX] = l1;
      g[RDX + 1] = h1;
    }
    setEager(s, (arithFlags(s) & ~ZF) | (equal ? ZF : 0));
  };
});

// --- rdrand / rdseed: a deterministic generator per CPU state (reproducible runs), CF = 1

const rngState = new WeakMap<CpuState, { x: bigint }>();
const M64 = (1n << 64n) - 1n;

/** splitmix64: the next 64 random bits. */
function next64(s: CpuState): bigint {
  let st = rngState.get(s);
  if (!st) {
    st = { x: 0x5357_4954_4348_5349n }; // "SWITCHSI"
    rngState.set(s, st);
  }
  st.x = (st.x + 0x9e3779b97f4a7c15n) & M64;
  let z = st.x;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64;
  return z ^ (z >> 31n);
}

/** Seeds the rdrand/rdseed generator of a CPU state (tests, checkpoint restore). */
export function seedRdrand(s: CpuState, seed: bigint): void {
  rngState.set(s, { x: seed & M64 });
}

define([Mnemonic.Rdrand, Mnemonic.Rdseed], (d) => {
  const dst = operand(d, 0);
  const set = dst.set;
  const mask = dst.size === 8 ? M64 : (1n << BigInt(dst.size * 8)) - 1n;
  return (s) => {
    const v = next64(s) & mask;
    set(s, Number(v & 0xffffffffn), Number(v >> 32n));
    setEager(s, CF);
  };
});

/** xlatb: al = [rbx + al] (ebx with 0x67; fs/gs override honoured). */
define(Mnemonic.Xlatb, (d) => {
  const p = prefixes(d);
  return (s) => {
    const off = s.g[RAX]! & 0xff;
    let a = p.addr32 ? ((s.g[RBX]! >>> 0) + off) % TWO32 : reg64(s, RBX) + off;
    if (p.seg === 'fs') a += s.fsBase;
    else if (p.seg === 'gs') a += s.gsBase;
    if (a >= 2 ** 64) a -= 2 ** 64;
    const v = s.mem.read8(a);
    s.g[RAX] = (s.g[RAX]! & ~0xff) | v;
  };
});

// --- crc32 (SSE4.2, an integer instruction): CRC-32C, bit-reflected, no flags

const CRC32C = new Uint32Array(256);
for (let i = 0; i < 256; i++) {
  let c = i;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  CRC32C[i] = c >>> 0;
}

function crcBytes(crc: number, v: number, n: number): number {
  for (let i = 0; i < n; i++) {
    crc = (CRC32C[(crc ^ v) & 0xff]! ^ (crc >>> 8)) >>> 0;
    v >>>= 8;
  }
  return crc;
}

/** crc32 r32/r64, r/m8/16/32/64: accumulates the source into the low 32 bits of the destination. */
define(Mnemonic.Crc32, (d) => {
  const dst = operand(d, 0);
  const src = operand(d, 1);
  const get = src.get;
  const dget = dst.get;
  const set = dst.set;
  const n = src.size;
  return (s) => {
    const crc = dget(s);
    const lo = get(s);
    const hi = s.hi;
    let c = crcBytes(crc, lo, Math.min(n, 4));
    if (n === 8) c = crcBytes(c, hi, 4);
    set(s, c, 0);
  };
});

// --- privileged instructions beyond core.ts's list: #GP(0) at CPL 3 (SIGSEGV), as on KVM

define(
  [
    Mnemonic.Rdmsr, Mnemonic.Wrmsr, Mnemonic.Lgdt, Mnemonic.Lidt, Mnemonic.Lldt, Mnemonic.Ltr, Mnemonic.Lmsw,
    Mnemonic.Clts, Mnemonic.Invlpg, Mnemonic.Invd, Mnemonic.Wbinvd, Mnemonic.Swapgs, Mnemonic.Sysretq, Mnemonic.Sysret,
    Mnemonic.Rdpmc, Mnemonic.Insw, Mnemonic.Insd, Mnemonic.Outsw, Mnemonic.Outsd,
  ],
  () => () => {
    throw new GuestException(VEC_GP, 0, 0);
  },
);

/** mov to or from a control or debug register: #GP(0) at CPL 3. */
defineForms(Mnemonic.Mov, (d) => {
  const isCrDr = (r: Register) => (r >= Register.CR0 && r <= Register.CR15) || (r >= Register.DR0 && r <= Register.DR15);
  const special = d.ops.some((o) => o.kind === 'reg' && isCrDr(o.reg));
  if (!special) throw new NotImplemented('not a control/debug register move');
  return () => {
    throw new GuestException(VEC_GP, 0, 0);
  };
});

/** mov r, sreg: the user-mode selectors (cs 0x33, ss 0x2b, the data segments null). */
defineForms(Mnemonic.Mov, (d) => {
  const src = d.ops[1];
  if (src?.kind !== 'reg' || src.reg < Register.ES || src.reg > Register.GS) {
    throw new NotImplemented('not a move from a segment register');
  }
  const sel = src.reg === Register.CS ? USER_CS : src.reg === Register.SS ? USER_SS : 0;
  const dst = operand(d, 0);
  const set = dst.set;
  // A register destination takes the zero-extended selector; memory takes 16 bits.
  return (s) => set(s, sel, 0);
});

/** rdfsbase/rdgsbase/wrfsbase/wrgsbase (CR4.FSGSBASE is set, as under KVM). */
define([Mnemonic.Rdfsbase, Mnemonic.Rdgsbase], (d) => {
  const fs = d.mnemonic === Mnemonic.Rdfsbase;
  const dst = operand(d, 0);
  const set = dst.set;
  return (s) => {
    const b = fs ? s.fsBase : s.gsBase;
    set(s, b % TWO32, Math.floor(b / TWO32));
  };
});
define([Mnemonic.Wrfsbase, Mnemonic.Wrgsbase], (d) => {
  const fs = d.mnemonic === Mnemonic.Wrfsbase;
  const src = operand(d, 0);
  const get = src.get;
  const wide = src.size === 8;
  return (s) => {
    const lo = get(s);
    const hi = wide ? s.hi : 0;
    // Non-canonical bases fault.
    const top = hi >>> 15;
    if (top !== 0 && top !== 0x1ffff) throw new GuestException(VEC_GP, 0, 0);
    const b = hi * TWO32 + lo;
    if (fs) s.fsBase = b;
    else s.gsBase = b;
  };
});
