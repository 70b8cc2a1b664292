/**
 * The SSE/SSE2 (+ the SSE3/SSSE3/SSE4.x bits x86-64-v2 code uses) and x87-control ISA of the
 * functional core (src/detailed/isa/sse-*.ts, x87.ts), instruction by instruction: exact result
 * bits, MXCSR flags, NaN/infinity/denormal rules, rounding control, faults. Expected values
 * follow the SDM and were checked against the host CPU under KVM (the random differential test
 * and the MXCSR-exception sweep did the bulk of that; these cases pin the rules down).
 *
 * Each case assembles literal machine code (the assembly is beside it), runs it on the atomic
 * CPU in a tiny address space (code, two data pages, a stack) and ends at an appended ud2.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { AtomicCPU, type AtomicOutcome } from '../../src/detailed/atomicCpu.js';
import { UnsupportedInstructionError } from '../../src/detailed/errors.js';
import { AddressSpace } from '../../src/guest/addressSpace.js';
import { PROT_EXEC, PROT_READ, PROT_WRITE } from '../../src/guest/pageTables.js';
import { allocatePhysicalMemory } from '../../src/guest/physmem.js';
import { GPR_NAMES, type GprName, initialThreadContext } from '../../src/guest/threadContext.js';

const CODE = 0x40_0000;
const DATA = 0x60_0000;
const DATA_SIZE = 0x2000;
const STACK = 0x70_0000;
const STACK_SIZE = 0x2000;

// MXCSR
const IE = 0x1;
const DE = 0x2;
const ZE = 0x4;
const OE = 0x8;
const UE = 0x10;
const PE = 0x20;
const DAZ = 0x40;
const MASKS = 0x1f80;
const RC_DOWN = 0x2000;
const RC_UP = 0x4000;
const RC_ZERO = 0x6000;
const FTZ = 0x8000;

// RFLAGS
const CF = 0x1;
const PF = 0x4;
const AF = 0x10;
const ZF = 0x40;
const SF = 0x80;
const OF = 0x800;
const ARITH = CF | PF | AF | ZF | SF | OF;

let aspace: AddressSpace;

beforeAll(() => {
  aspace = new AddressSpace(allocatePhysicalMemory(16 << 20, 'shared'));
  aspace.mapFixed(CODE, 0x1000, PROT_READ | PROT_EXEC, 'mmap', '[test-code]');
  aspace.mapFixed(DATA, DATA_SIZE, PROT_READ | PROT_WRITE, 'mmap', '[test-data]');
  aspace.mapFixed(STACK, STACK_SIZE, PROT_READ | PROT_WRITE, 'mmap', '[test-stack]');
});

const M64 = (1n << 64n) - 1n;
const U64 = (v: bigint | number) => BigInt.asUintN(64, BigInt(v));

/** Raw bits of a double / float. */
function d2b(x: number): bigint {
  const v = new DataView(new ArrayBuffer(8));
  v.setFloat64(0, x, true);
  return v.getBigUint64(0, true);
}
function f2b(x: number): number {
  const v = new DataView(new ArrayBuffer(4));
  v.setFloat32(0, x, true);
  return v.getUint32(0, true);
}
/** A 128-bit XMM value from two 64-bit halves (low first). */
const q2 = (lo: bigint, hi = 0n): bigint => (U64(hi) << 64n) | U64(lo);
/** From two doubles (low lane first). */
const pd = (lo: number, hi = 0): bigint => q2(d2b(lo), d2b(hi));
/** From four float bit patterns (lane 0 first). */
const ps4 = (a: number, b = 0, c = 0, d = 0): bigint =>
  (BigInt(d >>> 0) << 96n) | (BigInt(c >>> 0) << 64n) | (BigInt(b >>> 0) << 32n) | BigInt(a >>> 0);
/** From sixteen bytes (byte 0 first). */
const bytes16 = (b: number[]): bigint => b.reduce((acc, v, i) => acc | (BigInt(v & 0xff) << BigInt(8 * i)), 0n);

interface Init {
  regs?: Partial<Record<GprName, bigint | number>>;
  xmm?: Record<number, bigint>;
  mxcsr?: number;
  mem?: Record<number, number[] | Uint8Array>;
}

interface Result {
  out: AtomicOutcome;
  /** Ended at the appended ud2. */
  done: boolean;
  r(name: GprName): bigint;
  x(i: number): bigint;
  lo(i: number): bigint;
  hi(i: number): bigint;
  mxcsr: number;
  arith: number;
  fcw: number;
  fsw: number;
  bytes(addr: number, n: number): number[];
  u64(addr: number): bigint;
}

function run(hex: string, init: Init = {}): Result {
  const code = Buffer.from(`${hex.replace(/\s+/g, '')}0f0b`, 'hex');
  const page = new Uint8Array(0x1000).fill(0xcc);
  page.set(code);
  aspace.writeUnchecked(CODE, page);
  aspace.writeUnchecked(DATA, new Uint8Array(DATA_SIZE));
  aspace.writeUnchecked(STACK, new Uint8Array(STACK_SIZE));
  for (const [addr, data] of Object.entries(init.mem ?? {})) aspace.writeUnchecked(Number(addr), Uint8Array.from(data));
  const cpu = new AtomicCPU({ aspace });
  const tc = initialThreadContext(BigInt(CODE), BigInt(STACK + 0x1000));
  for (const [name, v] of Object.entries(init.regs ?? {})) tc.gpr[GPR_NAMES.indexOf(name as GprName)] = U64(v);
  const dv = new DataView(tc.xmm.buffer);
  for (const [i, v] of Object.entries(init.xmm ?? {})) {
    dv.setBigUint64(Number(i) * 16, v & M64, true);
    dv.setBigUint64(Number(i) * 16 + 8, (v >> 64n) & M64, true);
  }
  tc.mxcsr = init.mxcsr ?? MASKS;
  cpu.setThreadContext(tc);
  const out = cpu.run(10_000);
  const end = cpu.getThreadContext();
  const xv = new DataView(end.xmm.buffer);
  const done = out.kind === 'faulted' && out.report.signal === 'SIGILL' && Number(end.rip) === CODE + code.length - 2;
  return {
    out,
    done,
    r: (name) => end.gpr[GPR_NAMES.indexOf(name)]!,
    x: (i) => (xv.getBigUint64(i * 16 + 8, true) << 64n) | xv.getBigUint64(i * 16, true),
    lo: (i) => xv.getBigUint64(i * 16, true),
    hi: (i) => xv.getBigUint64(i * 16 + 8, true),
    mxcsr: end.mxcsr,
    arith: Number(end.rflags) & ARITH,
    fcw: end.x87.fcw,
    fsw: end.x87.fsw,
    bytes: (addr, n) => Array.from(aspace.read(addr, n)),
    u64: (addr) => aspace.readU64(addr),
  };
}

function ok(hex: string, init: Init = {}): Result {
  const res = run(hex, init);
  if (!res.done) throw new Error(`did not reach the final ud2: ${JSON.stringify(res.out)}`);
  return res;
}

function signal(res: Result): string {
  if (res.out.kind !== 'faulted') throw new Error(`expected a fault, got ${res.out.kind}`);
  return `${res.out.report.signal} ${res.out.report.vectorName}`;
}

function le64(v: bigint): number[] {
  return Array.from({ length: 8 }, (_, i) => Number((U64(v) >> BigInt(8 * i)) & 0xffn));
}

const RND = q2(0x0123456789abcdefn, 0xfedcba9876543210n);
const QNAN64 = 0x7ff8000000000000n;
const DEFAULT_NAN64 = 0xfff8000000000000n;
const DEFAULT_NAN32 = 0xffc00000;

describe('SSE moves', () => {
  it('movdqa: aligned load and store; a misaligned address raises #GP (SIGSEGV)', () => {
    const src = Array.from({ length: 16 }, (_, i) => i + 1);
    expect(ok('660f6f07' /* movdqa xmm0,[rdi] */, { regs: { rdi: DATA }, mem: { [DATA]: src } }).x(0)).toBe(bytes16(src));
    const st = ok('660f7f0f' /* movdqa [rdi],xmm1 */, { regs: { rdi: DATA + 16 }, xmm: { 1: RND } });
    expect(st.u64(DATA + 16)).toBe(0x0123456789abcdefn);
    expect(st.u64(DATA + 24)).toBe(0xfedcba9876543210n);
    expect(signal(run('660f6f07', { regs: { rdi: DATA + 8 } }))).toBe('SIGSEGV #GP general protection');
  });

  it('movups: unaligned load and store across a page boundary', () => {
    const at = DATA + 0x1000 - 5;
    const res = ok('0f1117 0f1017' /* movups [rdi],xmm2; movups xmm2,[rdi] */, { regs: { rdi: at }, xmm: { 2: RND } });
    expect(res.x(2)).toBe(RND);
    expect(res.u64(at)).toBe(0x0123456789abcdefn);
  });

  it('movss/movsd: loads zero the rest, register forms merge, stores write the low element', () => {
    const mem = { [DATA]: le64(0x1111111122222222n) };
    expect(ok('f30f1007' /* movss xmm0,[rdi] */, { regs: { rdi: DATA }, mem, xmm: { 0: RND } }).x(0)).toBe(0x22222222n);
    expect(ok('f20f1007' /* movsd xmm0,[rdi] */, { regs: { rdi: DATA }, mem, xmm: { 0: RND } }).x(0)).toBe(0x1111111122222222n);
    expect(ok('f30f10c1' /* movss xmm0,xmm1 */, { xmm: { 0: RND, 1: q2(0xaaaaaaaabbbbbbbbn) } }).x(0)).toBe(q2(0x01234567bbbbbbbbn, 0xfedcba9876543210n));
    expect(ok('f20f10c1' /* movsd xmm0,xmm1 */, { xmm: { 0: RND, 1: q2(0xaaaaaaaabbbbbbbbn) } }).x(0)).toBe(q2(0xaaaaaaaabbbbbbbbn, 0xfedcba9876543210n));
    const st = ok('f30f110f' /* movss [rdi],xmm1 */, { regs: { rdi: DATA }, xmm: { 1: RND }, mem: { [DATA]: le64(-1n) } });
    expect(st.u64(DATA)).toBe(0xffffffff89abcdefn);
    expect(ok('f20f110f' /* movsd [rdi],xmm1 */, { regs: { rdi: DATA }, xmm: { 1: RND } }).u64(DATA)).toBe(0x0123456789abcdefn);
  });

  it('movd/movq: into XMM zero-extends to 128 bits; out of XMM takes the low 32/64 bits', () => {
    expect(ok('660f6ec0' /* movd xmm0,eax */, { regs: { rax: 0x1122334455667788n }, xmm: { 0: RND } }).x(0)).toBe(0x55667788n);
    expect(ok('66480f6ec0' /* movq xmm0,rax */, { regs: { rax: 0x1122334455667788n }, xmm: { 0: RND } }).x(0)).toBe(0x1122334455667788n);
    expect(ok('660f7ec8' /* movd eax,xmm1 */, { regs: { rax: -1n }, xmm: { 1: RND } }).r('rax')).toBe(0x89abcdefn);
    expect(ok('66480f7ec8' /* movq rax,xmm1 */, { xmm: { 1: RND } }).r('rax')).toBe(0x0123456789abcdefn);
    expect(ok('f30f7ec1' /* movq xmm0,xmm1 */, { xmm: { 0: RND, 1: RND } }).x(0)).toBe(0x0123456789abcdefn);
    expect(ok('660fd60f' /* movq [rdi],xmm1 */, { regs: { rdi: DATA }, xmm: { 1: RND } }).u64(DATA)).toBe(0x0123456789abcdefn);
  });

  it('movhps/movlps/movhlps/movlhps move one quadword', () => {
    const mem = { [DATA]: le64(0x5555666677778888n) };
    expect(ok('0f1607' /* movhps xmm0,[rdi] */, { regs: { rdi: DATA }, mem, xmm: { 0: RND } }).x(0)).toBe(q2(0x0123456789abcdefn, 0x5555666677778888n));
    expect(ok('0f130f' /* movlps [rdi],xmm1 */, { regs: { rdi: DATA }, xmm: { 1: RND } }).u64(DATA)).toBe(0x0123456789abcdefn);
    expect(ok('0f12c1' /* movhlps xmm0,xmm1 */, { xmm: { 0: q2(1n, 2n), 1: RND } }).x(0)).toBe(q2(0xfedcba9876543210n, 2n));
    expect(ok('0f16c1' /* movlhps xmm0,xmm1 */, { xmm: { 0: q2(1n, 2n), 1: RND } }).x(0)).toBe(q2(1n, 0x0123456789abcdefn));
  });

  it('pmovmskb/movmskps/movmskpd gather sign bits (zero-extended)', () => {
    const v = bytes16([0x80, 0, 0xff, 0x7f, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x90]);
    expect(ok('660fd7c1' /* pmovmskb eax,xmm1 */, { regs: { rax: -1n }, xmm: { 1: v } }).r('rax')).toBe(0x8085n);
    expect(ok('0f50c1' /* movmskps eax,xmm1 */, { xmm: { 1: ps4(0x80000000, 0, 0xffffffff, 1) } }).r('rax')).toBe(0b0101n);
    expect(ok('660f50c1' /* movmskpd eax,xmm1 */, { xmm: { 1: pd(1, -0) } }).r('rax')).toBe(0b10n);
  });

  it('maskmovdqu stores the selected bytes at [rdi]', () => {
    const mask = bytes16([0x80, 0, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80]);
    const res = ok('660ff7ca' /* maskmovdqu xmm1,xmm2 */, { regs: { rdi: DATA + 3 }, xmm: { 1: RND, 2: mask }, mem: { [DATA]: new Array(32).fill(0xee) } });
    expect(res.bytes(DATA + 3, 16)).toEqual([0xef, 0xee, 0xab, ...new Array(12).fill(0xee), 0xfe]);
  });

  it('movnti, movntdq (aligned), lddqu (unaligned)', () => {
    expect(ok('480fc307' /* movnti [rdi],rax */, { regs: { rdi: DATA, rax: 0x42n } }).u64(DATA)).toBe(0x42n);
    expect(signal(run('660fe70f' /* movntdq [rdi],xmm1 */, { regs: { rdi: DATA + 4 } }))).toBe('SIGSEGV #GP general protection');
    const src = Array.from({ length: 16 }, (_, i) => 0x10 + i);
    expect(ok('f20ff007' /* lddqu xmm0,[rdi] */, { regs: { rdi: DATA + 3 }, mem: { [DATA + 3]: src } }).x(0)).toBe(bytes16(src));
  });
});

describe('SSE integer SIMD', () => {
  it('pxor of a register with itself zeroes it; paddq/psubq carry across the halves', () => {
    expect(ok('660fefc0' /* pxor xmm0,xmm0 */, { xmm: { 0: RND } }).x(0)).toBe(0n);
    expect(ok('660fd4c1' /* paddq xmm0,xmm1 */, { xmm: { 0: q2(0xffffffffn, M64), 1: q2(1n, 1n) } }).x(0)).toBe(q2(0x100000000n, 0n));
    expect(ok('660ffbc1' /* psubq xmm0,xmm1 */, { xmm: { 0: q2(0x100000000n, 0n), 1: q2(1n, 1n) } }).x(0)).toBe(q2(0xffffffffn, M64));
  });

  it('wrapping and saturating byte/word arithmetic', () => {
    const a = bytes16([0xff, 0x80, 0x10, 0, ...new Array(12).fill(0)]);
    const b = bytes16([0x02, 0x80, 0xf0, 0, ...new Array(12).fill(0)]);
    expect(ok('660ffcc1' /* paddb */, { xmm: { 0: a, 1: b } }).x(0) & 0xffffffffn).toBe(0x00000001n);
    expect(ok('660fdcc1' /* paddusb */, { xmm: { 0: a, 1: b } }).x(0) & 0xffffffffn).toBe(0x00ffffffn);
    // psubsw: 0x8000 - 1 saturates to 0x8000; 0x7fff - (-1) to 0x7fff
    expect(ok('660fe9c1' /* psubsw */, { xmm: { 0: q2(0x7fff8000n), 1: q2(0xffff0001n) } }).x(0)).toBe(0x7fff8000n);
  });

  it('pcmpeqb + pmovmskb (the strlen idiom) and pminub', () => {
    const s = bytes16([0x61, 0x62, 0, 0x63, ...new Array(12).fill(0x41)]);
    const res = ok('660f74c1 660fd7c0' /* pcmpeqb xmm0,xmm1; pmovmskb eax,xmm0 */, { xmm: { 0: 0n, 1: s } });
    expect(res.r('rax')).toBe(0b100n);
    expect(ok('660fdac1' /* pminub */, { xmm: { 0: bytes16([5, 200, 7]), 1: bytes16([9, 100, 7]) } }).x(0)).toBe(bytes16([5, 100, 7]));
  });

  it('psadbw, pmuludq, pmaddwd', () => {
    expect(ok('660ff6c1' /* psadbw */, { xmm: { 0: bytes16([10, 0, 255, 0, 0, 0, 0, 0, 1]), 1: bytes16([0, 10, 0, 0, 0, 0, 0, 0, 3]) } }).x(0)).toBe(q2(275n, 2n));
    expect(ok('660ff4c1' /* pmuludq */, { xmm: { 0: q2(0xffffffffn, 3n), 1: q2(0xffffffffn, 5n) } }).x(0)).toBe(q2(0xfffffffe00000001n, 15n));
    // pmaddwd: (-32768 * -32768) * 2 wraps to 0x80000000
    expect(ok('660ff5c1' /* pmaddwd */, { xmm: { 0: q2(0x8000800000020001n), 1: q2(0x8000800000040003n) } }).x(0)).toBe(q2(0x800000000000000bn));
  });

  it('pshufd, pshufb, punpcklbw, packuswb, palignr', () => {
    expect(ok('660f70c11b' /* pshufd xmm0,xmm1,0x1b */, { xmm: { 1: ps4(1, 2, 3, 4) } }).x(0)).toBe(ps4(4, 3, 2, 1));
    const tbl = bytes16(Array.from({ length: 16 }, (_, i) => 0xa0 + i));
    expect(ok('660f3800c1' /* pshufb xmm0,xmm1 */, { xmm: { 0: tbl, 1: bytes16([15, 0x80, 1, 0x11]) } }).x(0)).toBe(
      bytes16([0xaf, 0, 0xa1, 0xa1, 0xa0, 0xa0, 0xa0, 0xa0, 0xa0, 0xa0, 0xa0, 0xa0, 0xa0, 0xa0, 0xa0, 0xa0]),
    );
    expect(ok('660f60c1' /* punpcklbw */, { xmm: { 0: bytes16([1, 2, 3]), 1: bytes16([0xa, 0xb, 0xc]) } }).x(0)).toBe(bytes16([1, 0xa, 2, 0xb, 3, 0xc]));
    // packuswb: words -1, 0x100, 0x7f → 0, 0xff, 0x7f
    expect(ok('660f67c1' /* packuswb */, { xmm: { 0: q2(0x007f0100ffffn), 1: 0n } }).x(0)).toBe(q2(0x7fff00n));
    // palignr 5: bytes 5..20 of src:dst (src low)
    const src = bytes16(Array.from({ length: 16 }, (_, i) => i));
    const dst = bytes16(Array.from({ length: 16 }, (_, i) => 0x10 + i));
    expect(ok('660f3a0fc105' /* palignr xmm0,xmm1,5 */, { xmm: { 0: dst, 1: src } }).x(0)).toBe(bytes16(Array.from({ length: 16 }, (_, i) => i + 5)));
  });

  it('byte shifts and bit shifts, including counts past the width', () => {
    expect(ok('660f73f803' /* pslldq xmm0,3 */, { xmm: { 0: 0xffn } }).x(0)).toBe(0xff000000n);
    expect(ok('660f73d811' /* psrldq xmm0,17 */, { xmm: { 0: RND } }).x(0)).toBe(0n);
    expect(ok('660ff3c1' /* psllq xmm0,xmm1 */, { xmm: { 0: q2(1n, 3n), 1: q2(63n, 99n) } }).x(0)).toBe(q2(1n << 63n, 1n << 63n));
    expect(ok('660ff3c1', { xmm: { 0: RND, 1: q2(64n) } }).x(0)).toBe(0n);
    expect(ok('660f71e014' /* psraw xmm0,20 */, { xmm: { 0: q2(0x80007fffn) } }).x(0)).toBe(q2(0xffff0000n));
  });

  it('pextrw/pinsrw and ptest', () => {
    expect(ok('660fc5c103' /* pextrw eax,xmm1,3 */, { regs: { rax: -1n }, xmm: { 1: RND } }).r('rax')).toBe(0x0123n);
    expect(ok('660fc4c007' /* pinsrw xmm0,eax,7 */, { regs: { rax: 0xbeefn }, xmm: { 0: 0n } }).x(0)).toBe(0xbeefn << 112n);
    expect(ok('660f3817c1' /* ptest xmm0,xmm1 */, { xmm: { 0: 0xf0n, 1: 0x0fn } }).arith).toBe(ZF);
    expect(ok('660f3817c1', { xmm: { 0: 0xffn, 1: 0x0fn } }).arith).toBe(CF);
  });

  it('pcmpistri: equal-each and equal-any with implicit (NUL-terminated) lengths', () => {
    const text = [0x61, 0x62, 0x63, 0x64, 0];
    // imm 0x08: unsigned bytes, equal each: first mismatch... least significant set bit of IntRes2
    const each = ok('660f3a630f08' /* pcmpistri xmm1,[rdi],0x8 */, { regs: { rdi: DATA }, mem: { [DATA]: text }, xmm: { 1: bytes16([0x61, 0x62, 0x78, 0x64]) } });
    expect(each.r('rcx')).toBe(0n); // bytes 0 and 1 match: lowest index 0
    // imm 0x00: equal any: which bytes of [rdi] are in the set {c, x}
    const any = ok('660f3a630f00' /* pcmpistri xmm1,[rdi],0x0 */, { regs: { rdi: DATA }, mem: { [DATA]: text }, xmm: { 1: bytes16([0x78, 0x63]) } });
    expect(any.r('rcx')).toBe(2n);
    expect(any.arith).toBe(CF | ZF | SF); // match found; both strings shorter than 16
  });
});

describe('SSE floating point: results and MXCSR flags', () => {
  it('addsd 0.1 + 0.2 rounds to nearest and sets PE; an exact sum sets nothing', () => {
    const res = ok('f20f58c1' /* addsd xmm0,xmm1 */, { xmm: { 0: pd(0.1, 7), 1: pd(0.2, 9) } });
    expect(res.x(0)).toBe(pd(0.30000000000000004, 7));
    expect(res.mxcsr).toBe(MASKS | PE);
    expect(ok('f20f58c1', { xmm: { 0: pd(1.5), 1: pd(2.25) } }).mxcsr).toBe(MASKS);
  });

  it('single precision: addss rounds to binary32, addps works lane by lane', () => {
    const res = ok('f30f58c1' /* addss */, { xmm: { 0: ps4(f2b(1), 0x11111111), 1: ps4(f2b(2 ** -30), 0x22222222) } });
    expect(res.x(0)).toBe(ps4(f2b(1), 0x11111111));
    expect(res.mxcsr).toBe(MASKS | PE);
    expect(ok('0f58c1' /* addps */, { xmm: { 0: ps4(f2b(1), f2b(2), f2b(-3), f2b(0.5)), 1: ps4(f2b(1), f2b(2), f2b(3), f2b(0.25)) } }).x(0)).toBe(
      ps4(f2b(2), f2b(4), 0, f2b(0.75)),
    );
  });

  it('directed rounding (MXCSR.RC) is exact: 1 + 2^-60 up, down and toward zero', () => {
    const init = (mx: number) => ({ xmm: { 0: pd(1), 1: pd(2 ** -60) }, mxcsr: MASKS | mx });
    expect(ok('f20f58c1', init(RC_UP)).lo(0)).toBe(d2b(1 + 2 ** -52));
    expect(ok('f20f58c1', init(RC_DOWN)).lo(0)).toBe(d2b(1));
    const neg = { xmm: { 0: pd(-1), 1: pd(-(2 ** -60)) } };
    expect(ok('f20f58c1', { ...neg, mxcsr: MASKS | RC_DOWN }).lo(0)).toBe(d2b(-1 - 2 ** -52));
    expect(ok('f20f58c1', { ...neg, mxcsr: MASKS | RC_ZERO }).lo(0)).toBe(d2b(-1));
    // x - x is -0 only when rounding down
    expect(ok('f20f5cc1' /* subsd */, { xmm: { 0: pd(3), 1: pd(3) }, mxcsr: MASKS | RC_DOWN }).lo(0)).toBe(1n << 63n);
  });

  it('divide by zero: ZE and a signed infinity; 0/0 and inf-inf: IE and the default NaN', () => {
    const z = ok('f20f5ec1' /* divsd */, { xmm: { 0: pd(-1), 1: pd(0) } });
    expect(z.lo(0)).toBe(d2b(-Infinity));
    expect(z.mxcsr).toBe(MASKS | ZE);
    const nan = ok('f20f5ec1', { xmm: { 0: pd(0), 1: pd(-0) } });
    expect(nan.lo(0)).toBe(DEFAULT_NAN64);
    expect(nan.mxcsr).toBe(MASKS | IE);
    expect(ok('f20f5cc1' /* subsd */, { xmm: { 0: pd(Infinity), 1: pd(Infinity) } }).lo(0)).toBe(DEFAULT_NAN64);
    expect(ok('f30f5ec1' /* divss */, { xmm: { 0: 0n, 1: 0n } }).x(0)).toBe(BigInt(DEFAULT_NAN32));
  });

  it('NaN operands: the first operand NaN wins, SNaNs are quieted and raise IE, QNaNs do not', () => {
    const qnanPayload = 0x7ff800000000abcdn;
    const snan = 0x7ff0000000001234n;
    const a = ok('f20f58c1' /* addsd */, { xmm: { 0: q2(qnanPayload), 1: q2(snan) } });
    expect(a.lo(0)).toBe(qnanPayload);
    expect(a.mxcsr).toBe(MASKS | IE);
    const b = ok('f20f59c1' /* mulsd */, { xmm: { 0: pd(2), 1: q2(snan | (1n << 63n)) } });
    expect(b.lo(0)).toBe(snan | (1n << 63n) | (1n << 51n));
    const c = ok('f20f58c1', { xmm: { 0: pd(2), 1: q2(QNAN64 | 5n) } });
    expect(c.lo(0)).toBe(QNAN64 | 5n);
    expect(c.mxcsr).toBe(MASKS);
  });

  it('min/max return the second operand for any NaN (IE) or two zeros', () => {
    const n = ok('f20f5dc1' /* minsd */, { xmm: { 0: q2(QNAN64), 1: pd(5) } });
    expect(n.lo(0)).toBe(d2b(5));
    expect(n.mxcsr).toBe(MASKS | IE);
    expect(ok('f20f5dc1', { xmm: { 0: pd(5), 1: q2(QNAN64 | 7n) } }).lo(0)).toBe(QNAN64 | 7n);
    expect(ok('f20f5dc1', { xmm: { 0: pd(-0), 1: pd(0) } }).lo(0)).toBe(0n);
    expect(ok('f20f5fc1' /* maxsd */, { xmm: { 0: pd(0), 1: pd(-0) } }).lo(0)).toBe(1n << 63n);
    expect(ok('0f5dc1' /* minps */, { xmm: { 0: ps4(f2b(1), f2b(-2)), 1: ps4(f2b(3), f2b(-4)) } }).x(0)).toBe(ps4(f2b(1), f2b(-4)));
  });

  it('sqrt: exact roots, negative operands give the default NaN and IE, sqrt(-0) = -0', () => {
    expect(ok('f30f51c1' /* sqrtss */, { xmm: { 1: ps4(f2b(4)) } }).x(0)).toBe(BigInt(f2b(2)));
    const neg = ok('f20f51c1' /* sqrtsd */, { xmm: { 1: pd(-1) } });
    expect(neg.lo(0)).toBe(DEFAULT_NAN64);
    expect(neg.mxcsr).toBe(MASKS | IE);
    expect(ok('f20f51c1', { xmm: { 1: pd(-0) } }).lo(0)).toBe(1n << 63n);
    expect(ok('f20f51c1', { xmm: { 1: pd(2) } }).lo(0)).toBe(d2b(Math.SQRT2));
  });

  it('denormals: DE when used; DAZ reads them as zero; FTZ flushes tiny results (UE|PE)', () => {
    const den = 1n; // smallest positive binary64 denormal
    const a = ok('f20f58c1', { xmm: { 0: pd(1), 1: q2(den) } });
    expect(a.mxcsr).toBe(MASKS | DE | PE);
    const daz = ok('f20f58c1', { xmm: { 0: pd(0), 1: q2(den) }, mxcsr: MASKS | DAZ });
    expect(daz.lo(0)).toBe(0n);
    expect(daz.mxcsr).toBe(MASKS | DAZ);
    // 2^-1022 * 0.75: tiny and exact (denormal) without FTZ; with FTZ, zero and UE|PE
    const tiny = { xmm: { 0: pd(2 ** -1022), 1: pd(0.75) } };
    const exact = ok('f20f59c1' /* mulsd */, tiny);
    expect(exact.lo(0)).toBe(d2b(2 ** -1022 * 0.75));
    expect(exact.mxcsr).toBe(MASKS);
    const ftz = ok('f20f59c1', { ...tiny, mxcsr: MASKS | FTZ });
    expect(ftz.lo(0)).toBe(0n);
    expect(ftz.mxcsr).toBe(MASKS | FTZ | UE | PE);
    // tiny and inexact: UE|PE
    expect(ok('f20f59c1', { xmm: { 0: pd(2 ** -1022), 1: pd(1 / 3) } }).mxcsr).toBe(MASKS | UE | PE);
  });

  it('overflow: OE|PE and infinity when rounding to nearest, the largest finite value toward zero', () => {
    const big = { xmm: { 0: pd(1.5e308), 1: pd(1e308) } };
    const rn = ok('f20f58c1', big);
    expect(rn.lo(0)).toBe(d2b(Infinity));
    expect(rn.mxcsr).toBe(MASKS | OE | PE);
    expect(ok('f20f58c1', { ...big, mxcsr: MASKS | RC_ZERO }).lo(0)).toBe(d2b(Number.MAX_VALUE));
  });

  it('an unmasked exception raises #XM (SIGFPE), sets its flag and leaves the destination alone', () => {
    const res = run('f20f5ec1' /* divsd */, { xmm: { 0: pd(1, 42), 1: pd(0) }, mxcsr: MASKS & ~0x200 });
    expect(signal(res)).toBe('SIGFPE #XM SIMD floating-point');
    expect(res.x(0)).toBe(pd(1, 42));
    expect(res.mxcsr).toBe((MASKS & ~0x200) | ZE);
    // PE unmasked: the first inexact result traps
    expect(signal(run('f20f58c1', { xmm: { 0: pd(0.1), 1: pd(0.2) }, mxcsr: MASKS & ~0x1000 }))).toBe('SIGFPE #XM SIMD floating-point');
  });

  it('cmppd/cmpsd predicates: ordered compares signal IE on QNaN, quiet ones do not', () => {
    const lt = ok('660fc2c101' /* cmpltpd */, { xmm: { 0: q2(d2b(1), QNAN64), 1: pd(2, 0) } });
    expect(lt.x(0)).toBe(q2(M64, 0n));
    expect(lt.mxcsr).toBe(MASKS | IE);
    const un = ok('660fc2c103' /* cmpunordpd */, { xmm: { 0: q2(d2b(1), QNAN64), 1: pd(2, 0) } });
    expect(un.x(0)).toBe(q2(0n, M64));
    expect(un.mxcsr).toBe(MASKS);
    expect(ok('f20fc2c100' /* cmpeqsd */, { xmm: { 0: pd(-0, 3), 1: pd(0) } }).x(0)).toBe(q2(M64, d2b(3)));
  });

  it('comisd/ucomisd: ZF PF CF; unordered sets all three; only comisd signals IE on a QNaN', () => {
    expect(ok('660f2fc1' /* comisd */, { xmm: { 0: pd(1), 1: pd(2) } }).arith).toBe(CF);
    expect(ok('660f2fc1', { xmm: { 0: pd(2), 1: pd(1) } }).arith).toBe(0);
    expect(ok('660f2fc1', { xmm: { 0: pd(-0), 1: pd(0) } }).arith).toBe(ZF);
    const c = ok('660f2fc1', { xmm: { 0: q2(QNAN64), 1: pd(1) } });
    expect(c.arith).toBe(ZF | PF | CF);
    expect(c.mxcsr).toBe(MASKS | IE);
    const u = ok('660f2ec1' /* ucomisd */, { xmm: { 0: q2(QNAN64), 1: pd(1) } });
    expect(u.arith).toBe(ZF | PF | CF);
    expect(u.mxcsr).toBe(MASKS);
  });

  it('logic and shuffles: andpd/xorps/andnps, shufps, shufpd, unpcklps, unpckhpd', () => {
    expect(ok('660f54c1' /* andpd */, { xmm: { 0: pd(-3.5, -1), 1: q2(0x7fffffffffffffffn, 0x7fffffffffffffffn) } }).x(0)).toBe(pd(3.5, 1));
    expect(ok('0f57c1' /* xorps */, { xmm: { 0: RND, 1: RND } }).x(0)).toBe(0n);
    expect(ok('0f55c1' /* andnps */, { xmm: { 0: 0xf0n, 1: 0xffn } }).x(0)).toBe(0x0fn);
    expect(ok('0fc6c14e' /* shufps xmm0,xmm1,0x4e */, { xmm: { 0: ps4(1, 2, 3, 4), 1: ps4(5, 6, 7, 8) } }).x(0)).toBe(ps4(3, 4, 5, 6));
    expect(ok('660fc6c101' /* shufpd xmm0,xmm1,1 */, { xmm: { 0: q2(1n, 2n), 1: q2(3n, 4n) } }).x(0)).toBe(q2(2n, 3n));
    expect(ok('0f14c1' /* unpcklps */, { xmm: { 0: ps4(1, 2, 3, 4), 1: ps4(5, 6, 7, 8) } }).x(0)).toBe(ps4(1, 5, 2, 6));
    expect(ok('660f15c1' /* unpckhpd */, { xmm: { 0: q2(1n, 2n), 1: q2(3n, 4n) } }).x(0)).toBe(q2(2n, 4n));
  });
});

describe('SSE conversions', () => {
  it('cvttsd2si truncates; cvtsd2si rounds by RC (ties to even)', () => {
    expect(ok('f20f2cc1' /* cvttsd2si eax,xmm1 */, { regs: { rax: -1n }, xmm: { 1: pd(-2.7) } }).r('rax')).toBe(0xfffffffen);
    expect(ok('f20f2dc1' /* cvtsd2si eax,xmm1 */, { xmm: { 1: pd(2.5) } }).r('rax')).toBe(2n);
    expect(ok('f20f2dc1', { xmm: { 1: pd(3.5) } }).r('rax')).toBe(4n);
    expect(ok('f20f2dc1', { xmm: { 1: pd(2.1) }, mxcsr: MASKS | RC_UP }).r('rax')).toBe(3n);
    const res = ok('f20f2dc1', { xmm: { 1: pd(-2.1) }, mxcsr: MASKS | RC_DOWN });
    expect(res.r('rax')).toBe(0xfffffffdn);
    expect(res.mxcsr).toBe(MASKS | RC_DOWN | PE);
  });

  it('NaN and out-of-range values give the integer indefinite and IE (no PE)', () => {
    const a = ok('f20f2cc1' /* cvttsd2si eax */, { regs: { rax: -1n }, xmm: { 1: pd(2147483648) } });
    expect(a.r('rax')).toBe(0x80000000n);
    expect(a.mxcsr).toBe(MASKS | IE);
    expect(ok('f2480f2cc1' /* cvttsd2si rax */, { xmm: { 1: q2(QNAN64) } }).r('rax')).toBe(0x8000000000000000n);
    expect(ok('f2480f2cc1', { xmm: { 1: pd(-9223372036854775808) } }).r('rax')).toBe(0x8000000000000000n);
    expect(ok('f2480f2dc1' /* cvtsd2si rax */, { xmm: { 1: pd(-123456789012.75) } }).r('rax')).toBe(U64(-123456789013n));
    expect(ok('f20f2cc1', { xmm: { 1: pd(-2147483648.9) } }).r('rax')).toBe(0x80000000n); // truncates to -2^31: in range
  });

  it('cvtsi2sd/cvtsi2ss: exact for small values, rounded by RC beyond the precision', () => {
    expect(ok('f20f2ac0' /* cvtsi2sd xmm0,eax */, { regs: { rax: 0xffffffffn }, xmm: { 0: RND } }).x(0)).toBe(q2(d2b(-1), 0xfedcba9876543210n));
    const big = 2n ** 53n + 1n;
    const rn = ok('f2480f2ac0' /* cvtsi2sd xmm0,rax */, { regs: { rax: big } });
    expect(rn.lo(0)).toBe(d2b(2 ** 53));
    expect(rn.mxcsr).toBe(MASKS | PE);
    expect(ok('f2480f2ac0', { regs: { rax: big }, mxcsr: MASKS | RC_UP }).lo(0)).toBe(d2b(2 ** 53 + 2));
    expect(ok('f2480f2ac0', { regs: { rax: -1n } }).lo(0)).toBe(d2b(-1));
    expect(ok('f30f2ac0' /* cvtsi2ss xmm0,eax */, { regs: { rax: 16777217 } }).x(0)).toBe(BigInt(f2b(16777216)));
  });

  it('cvtsd2ss rounds, overflows to infinity, underflows (FTZ flushes); cvtss2sd quiets an SNaN', () => {
    const r = ok('f20f5ac1' /* cvtsd2ss */, { xmm: { 1: pd(0.1) } });
    expect(r.x(0)).toBe(BigInt(f2b(0.1)));
    expect(r.mxcsr).toBe(MASKS | PE);
    const o = ok('f20f5ac1', { xmm: { 1: pd(1e39) } });
    expect(o.x(0)).toBe(0x7f800000n);
    expect(o.mxcsr).toBe(MASKS | OE | PE);
    const u = ok('f20f5ac1', { xmm: { 1: pd(1e-40) }, mxcsr: MASKS | FTZ });
    expect(u.x(0)).toBe(0n);
    expect(u.mxcsr).toBe(MASKS | FTZ | UE | PE);
    const s = ok('f30f5ac1' /* cvtss2sd */, { xmm: { 1: ps4(0x7f800001) } });
    expect(s.lo(0)).toBe(0x7ff8000020000000n);
    expect(s.mxcsr).toBe(MASKS | IE);
  });

  it('packed conversions: cvtps2pd, cvtpd2ps (upper half zeroed), cvtdq2pd, cvtdq2ps, cvttps2dq, cvtpd2dq', () => {
    expect(ok('0f5ac1' /* cvtps2pd */, { xmm: { 1: ps4(f2b(1.5), f2b(-2)) } }).x(0)).toBe(pd(1.5, -2));
    expect(ok('660f5ac1' /* cvtpd2ps */, { xmm: { 0: RND, 1: pd(1.5, -2) } }).x(0)).toBe(ps4(f2b(1.5), f2b(-2)));
    expect(ok('f30fe6c1' /* cvtdq2pd */, { xmm: { 1: ps4(-7, 2147483647, 5, 5) } }).x(0)).toBe(pd(-7, 2147483647));
    expect(ok('0f5bc1' /* cvtdq2ps */, { xmm: { 1: ps4(1, -1, 16777217, 0) } }).x(0)).toBe(ps4(f2b(1), f2b(-1), f2b(16777216), 0));
    const t = ok('f30f5bc1' /* cvttps2dq */, { xmm: { 1: ps4(f2b(1.9), f2b(-1.9), 0x7fc00000, f2b(3e9)) } });
    expect(t.x(0)).toBe(ps4(1, -1, 0x80000000, 0x80000000));
    expect(t.mxcsr).toBe(MASKS | IE | PE);
    expect(ok('f20fe6c1' /* cvtpd2dq */, { xmm: { 0: RND, 1: pd(2.5, -3.5) } }).x(0)).toBe(ps4(2, -4, 0, 0));
  });

  it('rcpss/rsqrtps: the measured approximations and the special cases', () => {
    expect(ok('f30f53c1' /* rcpss */, { xmm: { 0: RND, 1: ps4(f2b(1)) } }).x(0)).toBe(q2(0x012345673f7ff000n, 0xfedcba9876543210n));
    const r = ok('0f52c1' /* rsqrtps */, { xmm: { 1: ps4(f2b(4), 0, 0x80800000, 0x7f800000) } });
    expect(r.x(0) & 0xffffffffn).toBe(BigInt(f2b(0.4998779296875)));
    expect((r.x(0) >> 32n) & 0xffffffffn).toBe(0x7f800000n);
    expect((r.x(0) >> 64n) & 0xffffffffn).toBe(BigInt(DEFAULT_NAN32));
    expect(r.x(0) >> 96n).toBe(0n);
    expect(r.mxcsr).toBe(MASKS);
  });

  it('roundsd and haddpd', () => {
    expect(ok('660f3a0bc101' /* roundsd xmm0,xmm1,1 (floor) */, { xmm: { 0: pd(0, 9), 1: pd(-2.5) } }).x(0)).toBe(pd(-3, 9));
    expect(ok('660f7cc1' /* haddpd */, { xmm: { 0: pd(1, 2), 1: pd(10, 20) } }).x(0)).toBe(pd(3, 30));
  });
});

describe('MXCSR and x87 control', () => {
  it('ldmxcsr/stmxcsr round trip; a reserved bit raises #GP', () => {
    const res = ok('0fae17 0fae5f04' /* ldmxcsr [rdi]; stmxcsr [rdi+4] */, { regs: { rdi: DATA }, mem: { [DATA]: [0xc0, 0xff, 0, 0] } });
    expect(res.mxcsr).toBe(0xffc0);
    expect(res.bytes(DATA + 4, 4)).toEqual([0xc0, 0xff, 0, 0]);
    expect(signal(run('0fae17', { regs: { rdi: DATA }, mem: { [DATA]: [0, 0, 1, 0] } }))).toBe('SIGSEGV #GP general protection');
  });

  it('fnstcw/fldcw (reserved bits read as the hardware has them), fnstsw ax, fninit', () => {
    const res = ok('d92f d97f02' /* fldcw [rdi]; fnstcw [rdi+2] */, { regs: { rdi: DATA }, mem: { [DATA]: [0xd1, 0xec] } });
    expect(res.fcw).toBe(0xc51);
    expect(res.bytes(DATA + 2, 2)).toEqual([0x51, 0x0c]);
    expect(ok('dfe0' /* fnstsw ax */, { regs: { rax: 0x1234ffffn } }).r('rax')).toBe(0x12340000n);
    const init = ok('d92f dbe3' /* fldcw [rdi]; fninit */, { regs: { rdi: DATA }, mem: { [DATA]: [0x7f, 0x00] } });
    expect(init.fcw).toBe(0x37f);
    expect(init.fsw).toBe(0);
  });

  it('fxsave64/fxrstor64: the 512-byte image (fcw, fsw, ftw, mxcsr, mxcsr_mask, st, xmm) round-trips', () => {
    const res = ok('480fae07 0fae5f40 480fae0f' /* fxsave64 [rdi]; stmxcsr [rdi+64] (clobbers st1); fxrstor64 [rdi] */, {
      regs: { rdi: DATA },
      xmm: { 0: RND, 15: q2(5n, 6n) },
      mxcsr: MASKS | PE | RC_UP,
    });
    expect(res.bytes(DATA, 8)).toEqual([0x7f, 0x03, 0, 0, 0, 0, 0, 0]);
    expect(res.bytes(DATA + 24, 8)).toEqual([0xa0, 0x5f, 0, 0, 0xff, 0xff, 0, 0]);
    expect(res.u64(DATA + 160)).toBe(0x0123456789abcdefn);
    expect(res.u64(DATA + 160 + 15 * 16 + 8)).toBe(6n);
    expect(res.x(0)).toBe(RND);
    expect(res.mxcsr).toBe(MASKS | PE | RC_UP);
    expect(signal(run('480fae07', { regs: { rdi: DATA + 8 } }))).toBe('SIGSEGV #GP general protection');
  });

  it('x87 transcendentals are not implemented: executing fsin raises the typed unsupported-instruction error', () => {
    expect(() => run('d9fe' /* fsin */)).toThrow(UnsupportedInstructionError);
    // emms is a no-op
    expect(ok('0f77').mxcsr).toBe(MASKS);
  });
});
