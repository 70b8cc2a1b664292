/**
 * x87 arithmetic: the exact 80-bit float library (src/detailed/softfloat80.ts) against known
 * bit patterns, the instructions (src/detailed/isa/x87-arith.ts) on the atomic CPU with literal
 * machine code, and — where /dev/kvm is available — a random differential test of every
 * implemented x87 instruction against the host CPU: the same state (stack contents, TOP, tags,
 * FCW with random rounding/precision control and, in one pass, random exception masks, FSW
 * condition codes and sticky flags, RFLAGS, a memory operand) runs on both; FCW, FSW, FTW, the
 * valid stack registers, RFLAGS and the memory written must agree bit for bit.
 *
 * The literal expectations below were measured on the host CPU (Intel) under KVM.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AtomicCPU, type AtomicOutcome } from '../../src/detailed/atomicCpu.js';
import * as F from '../../src/detailed/softfloat80.js';
import { AtomicSnippetRunner } from '../../src/difftest/difftest.js';
import { KvmSnippetRunner } from '../../src/difftest/kvmSnippet.js';
import { SCRATCH_ADDR, SCRATCH_SIZE, SNIPPET_CODE_ADDR, STACK_SIZE, STACK_START } from '../../src/difftest/layout.js';
import { AddressSpace } from '../../src/guest/addressSpace.js';
import { PROT_EXEC, PROT_READ, PROT_WRITE } from '../../src/guest/pageTables.js';
import { allocatePhysicalMemory } from '../../src/guest/physmem.js';
import { GPR_NAMES, type GprName, initialThreadContext, type ThreadContext } from '../../src/guest/threadContext.js';
import { describeKvm } from '../kvm/support.js';

// FSW bits
const IE = 0x1;
const DE = 0x2;
const ZE = 0x4;
const OE = 0x8;
const UE = 0x10;
const PE = 0x20;
const SF = 0x40;
const ES = 0x80;
const C0 = 0x100;
const C1 = 0x200;
const C2 = 0x400;
const C3 = 0x4000;
// FCW rounding control
const RC_DOWN = 0x400;
const RC_UP = 0x800;
const RC_ZERO = 0xc00;
// RFLAGS
const CF = 0x1;
const PF = 0x4;
const ZF = 0x40;

const INDEFINITE = 0xffffc000000000000000n;

/** An F80 from its 80-bit pattern (sign/exponent in bits 64–79). */
const x80 = (bits: bigint): F.F80 => F.f80FromBits(bits);
const bits = (v: F.F80): bigint => F.f80Bits(v);
const env = (fcw = 0x37f): F.FpEnv => new F.FpEnv().reset(fcw);

function d2b(x: number): bigint {
  const v = new DataView(new ArrayBuffer(8));
  v.setFloat64(0, x, true);
  return v.getBigUint64(0, true);
}

describe('softfloat80: exact extended-precision arithmetic', () => {
  it('1/3 rounded to 64, 53 and 24 bits, by rounding control, with PE and C1', () => {
    const one = F.fromInt(1n);
    const three = F.fromInt(3n);
    let e = env();
    expect(bits(F.div80(one, three, e))).toBe(0x3ffd_aaaaaaaaaaaaaaabn);
    expect(e.flags).toBe(PE);
    expect(e.roundedUp).toBe(true);
    e = env(0x37f | RC_ZERO);
    expect(bits(F.div80(one, three, e))).toBe(0x3ffd_aaaaaaaaaaaaaaaan);
    expect(e.roundedUp).toBe(false);
    expect(bits(F.div80(one, three, env(0x27f)))).toBe(0x3ffd_aaaaaaaaaaaaa800n); // PC = 53
    expect(bits(F.div80(one, three, env(0x07f)))).toBe(0x3ffd_aaaaab0000000000n); // PC = 24
    expect(bits(F.div80(F.neg80(one), three, env(0x37f | RC_DOWN)))).toBe(0xbffd_aaaaaaaaaaaaaaabn);
    expect(bits(F.div80(F.neg80(one), three, env(0x37f | RC_UP)))).toBe(0xbffd_aaaaaaaaaaaaaaaan);
  });

  it('f64 and f32 load exactly: 0.1, denormals (DE), infinities, NaN payloads (SNaN → IE, quieted)', () => {
    let e = env();
    expect(bits(F.fromF64(d2b(0.1), e))).toBe(0x3ffb_ccccccccccccd000n);
    expect(e.flags).toBe(0);
    expect(bits(F.fromF64(1n, e))).toBe(0x3bcd_8000000000000000n); // 2^-1074
    expect(e.flags).toBe(DE);
    expect(bits(F.fromF32(1, env()))).toBe(0x3f6a_8000000000000000n); // 2^-149
    expect(bits(F.fromF64(d2b(-Infinity), env()))).toBe(0xffff_8000000000000000n);
    e = env();
    expect(bits(F.fromF64(0x7ff0000000000001n, e))).toBe(0x7fff_c000000000000800n);
    expect(e.flags).toBe(IE);
    expect(bits(F.fromF32(0xffc00001, env()))).toBe(0xffff_c000010000000000n);
    expect(bits(F.fromF64(d2b(-0), env()))).toBe(0x8000_0000000000000000n);
  });

  it('stores to f64/f32 round by RC, overflow to ∞ or the largest finite, underflow to denormals', () => {
    const third = x80(0x3ffd_aaaaaaaaaaaaaaabn);
    expect(F.toF64(third, env())).toBe(0x3fd5555555555555n);
    const e = env(0x37f | RC_UP);
    expect(F.toF64(third, e)).toBe(0x3fd5555555555556n);
    expect(e.flags).toBe(PE);
    expect(e.roundedUp).toBe(true);
    const maxDouble = F.fromF64(0x7fefffffffffffffn, env());
    let o = env();
    expect(F.toF32(maxDouble, o)).toBe(0x7f800000);
    expect(o.flags).toBe(OE | PE);
    o = env(0x37f | RC_ZERO);
    expect(F.toF32(maxDouble, o)).toBe(0x7f7fffff);
    // (1 − 2^-60)·2^-1022: tiny before rounding, not after (x87 detects tininess after rounding): no UE
    const nearMin = x80(0x3c00_fffffffffffffff0n);
    const u = env();
    expect(F.toF64(nearMin, u)).toBe(0x0010000000000000n);
    expect(u.flags).toBe(PE);
    // 2^-1074 · 1.5 → a denormal, inexact and tiny: UE and PE
    const tiny = x80(0x3bcd_c000000000000000n);
    const t = env();
    expect(F.toF64(tiny, t)).toBe(2n);
    expect(t.flags).toBe(UE | PE);
    // NaN payloads are truncated and quieted; an SNaN raises IE
    const n = env();
    expect(F.toF64(x80(0x7fff_8000000000000800n), n)).toBe(0x7ff8000000000001n);
    expect(n.flags).toBe(IE);
    expect(F.toF32(x80(0x4000_0000000000000001n), env())).toBe(0xffc00000); // unnormal: invalid → indefinite
  });

  it('integer conversions: rounding by RC, fisttp truncation, the integer indefinite for overflow and NaN', () => {
    const v = (x: number) => F.fromF64(d2b(x), env());
    expect(F.toInt(v(2.5), 32, env())).toBe(2n);
    const up = env(0x37f | RC_UP);
    expect(F.toInt(v(2.5), 32, up)).toBe(3n);
    expect(up.flags).toBe(PE);
    expect(up.roundedUp).toBe(true);
    expect(F.toInt(v(-2.5), 32, env(0x37f | RC_DOWN))).toBe(-3n);
    expect(F.toInt(v(-2.7), 16, env(), true)).toBe(-2n);
    const big = env();
    expect(F.toInt(v(2 ** 31), 32, big)).toBeNull();
    expect(big.flags).toBe(IE);
    expect(F.toInt(v(-(2 ** 31)), 32, env())).toBe(-(2n ** 31n));
    expect(F.toInt(v(-(2 ** 63)), 64, env())).toBe(-(2n ** 63n));
    expect(F.toInt(v(2 ** 63), 64, env())).toBeNull();
    expect(F.toInt(v(32767.5), 16, env())).toBeNull(); // rounds to 32768
    expect(F.toInt(v(NaN), 64, env())).toBeNull();
    expect(F.toInt(v(-Infinity), 16, env())).toBeNull();
    expect(bits(F.fromInt(-(2n ** 63n)))).toBe(0xc03e_8000000000000000n);
    expect(bits(F.fromInt(0n))).toBe(0n);
    expect(bits(F.fromInt(-5n))).toBe(0xc001_a000000000000000n);
  });

  it('add, sub, mul, sqrt: exact cases, signed zeros, invalid operations, far-apart operands', () => {
    const v = (x: number) => F.fromF64(d2b(x), env());
    expect(F.toNumber(F.add80(v(0.1), v(0.2), env()))).toBe(0.30000000000000004);
    expect(bits(F.sub80(v(1), v(1), env()))).toBe(0n);
    expect(bits(F.sub80(v(1), v(1), env(0x37f | RC_DOWN)))).toBe(0x8000_0000000000000000n);
    expect(bits(F.add80(v(-0), v(-0), env()))).toBe(0x8000_0000000000000000n);
    const inv = env();
    expect(bits(F.add80(v(Infinity), v(-Infinity), inv))).toBe(INDEFINITE);
    expect(inv.flags).toBe(IE);
    // 1 + 2^-16000: the tiny addend only decides the rounding
    const far = env(0x37f | RC_UP);
    expect(bits(F.add80(v(1), x80(0x017f_8000000000000000n), far))).toBe(0x3fff_8000000000000001n);
    expect(far.flags).toBe(PE);
    const sq = env();
    expect(bits(F.sqrt80(F.fromInt(2n), sq))).toBe(0x3fff_b504f333f9de6484n);
    expect(sq.flags).toBe(PE);
    expect(bits(F.sqrt80(F.fromInt(144n), env()))).toBe(bits(F.fromInt(12n)));
    expect(bits(F.sqrt80(v(-1), env()))).toBe(INDEFINITE);
    expect(bits(F.sqrt80(v(-0), env()))).toBe(0x8000_0000000000000000n);
    // largest finite squared: overflow to ∞ (nearest) or the largest finite (toward zero)
    const max = x80(0x7ffe_ffffffffffffffffn);
    const ov = env();
    expect(bits(F.mul80(max, max, ov))).toBe(0x7fff_8000000000000000n);
    expect(ov.flags).toBe(OE | PE);
    expect(bits(F.mul80(max, max, env(0x37f | RC_ZERO)))).toBe(0x7ffe_ffffffffffffffffn);
    // an unmasked overflow delivers the bias-adjusted result (exponent − 24576)
    const adj = env(0x37f & ~OE);
    expect(bits(F.mul80(max, max, adj))).toBe(0x5ffe_fffffffffffffffen);
    expect(adj.unmaskedOU).toBe(true);
  });

  it('division by zero (ZE, no DE), 0/0 (IE), NaN propagation (larger significand, QNaN over SNaN)', () => {
    const den = x80(0x0000_0001a185f000352an);
    const z = env();
    expect(bits(F.div80(den, x80(0n), z))).toBe(0x7fff_8000000000000000n);
    expect(z.flags).toBe(ZE);
    expect(bits(F.div80(x80(0n), x80(0n), env()))).toBe(INDEFINITE);
    const q1 = x80(0x7fff_c000000000000001n);
    const q2 = x80(0xffff_c000000000000002n);
    const s3 = x80(0x7fff_8000000000000003n);
    expect(bits(F.add80(q1, q2, env()))).toBe(0xffff_c000000000000002n);
    const e = env();
    expect(bits(F.mul80(s3, q1, e))).toBe(0x7fff_c000000000000001n);
    expect(e.flags).toBe(IE);
    expect(bits(F.add80(s3, F.fromInt(1n), env()))).toBe(0x7fff_c000000000000003n);
    // a QNaN operand pre-empts DE
    const d = env();
    F.add80(q1, den, d);
    expect(d.flags).toBe(0);
  });

  it('compare: ordered results, ±0 equal, NaN unordered (QNaN raises IE only for signaling compares)', () => {
    const v = (x: number) => F.fromF64(d2b(x), env());
    expect(F.compare80(v(1), v(2), env(), true)).toBe(F.CMP_LT);
    expect(F.compare80(v(-0), v(0), env(), true)).toBe(F.CMP_EQ);
    expect(F.compare80(v(-1), v(-2), env(), true)).toBe(F.CMP_GT);
    expect(F.compare80(v(Infinity), x80(0x7ffe_ffffffffffffffffn), env(), true)).toBe(F.CMP_GT);
    const q = env();
    expect(F.compare80(v(NaN), v(1), q, false)).toBe(F.CMP_UN);
    expect(q.flags).toBe(0);
    const s = env();
    expect(F.compare80(v(NaN), v(1), s, true)).toBe(F.CMP_UN);
    expect(s.flags).toBe(IE);
  });

  it('frndint, fscale, fprem/fprem1, fxtract and the constants', () => {
    const v = (x: number) => F.fromF64(d2b(x), env());
    expect(F.toNumber(F.roundInt80(v(-2.5), env()))).toBe(-2);
    expect(F.toNumber(F.roundInt80(v(-2.5), env(0x37f | RC_DOWN)))).toBe(-3);
    expect(bits(F.roundInt80(v(-0.25), env()))).toBe(0x8000_0000000000000000n);
    expect(F.toNumber(F.scale80(v(3), v(-2.9), env()))).toBe(0.75);
    const r = F.prem80(v(10), v(3), env(), false);
    expect(F.toNumber(r.value)).toBe(1);
    expect([r.q, r.partial]).toEqual([3, false]);
    expect(F.toNumber(F.prem80(v(11), v(3), env(), true).value)).toBe(-1);
    const big = F.prem80(x80(0x40c7_c000000000000001n), x80(0x3fff_a000000000000000n), env(), false);
    expect(big.partial).toBe(true);
    expect(bits(big.value)).toBe(0x409d_8000040000000000n); // measured: N = 32 + D mod 32
    const [ex, sig] = F.xtract80(v(-12), env());
    expect(F.toNumber(ex)).toBe(3);
    expect(F.toNumber(sig)).toBe(-1.5);
    expect(bits(F.constant80('pi', 0))).toBe(0x4000_c90fdaa22168c235n);
    expect(bits(F.constant80('pi', 1))).toBe(0x4000_c90fdaa22168c234n);
    expect(bits(F.constant80('l2t', 0))).toBe(0x4000_d49a784bcd1b8afen);
    expect(bits(F.constant80('l2t', 2))).toBe(0x4000_d49a784bcd1b8affn);
    expect(bits(F.constant80('ln2', 0))).toBe(0x3ffe_b17217f7d1cf79acn);
  });

  it('fxam classes', () => {
    expect(F.fxamClass(x80(0n))).toBe(4);
    expect(F.fxamClass(x80(0xffff_8000000000000000n))).toBe(3);
    expect(F.fxamClass(x80(INDEFINITE))).toBe(1);
    expect(F.fxamClass(x80(0x0000_0000000000000001n))).toBe(6);
    expect(F.fxamClass(x80(0x3fff_8000000000000000n))).toBe(2);
    expect(F.fxamClass(x80(0x3fff_0000000000000000n))).toBe(0);
  });
});

// --- instructions on the atomic CPU

const CODE = 0x40_0000;
const DATA = 0x60_0000;
const STACK = 0x70_0000;

let aspace: AddressSpace;

beforeAll(() => {
  aspace = new AddressSpace(allocatePhysicalMemory(16 << 20, 'shared'));
  aspace.mapFixed(CODE, 0x1000, PROT_READ | PROT_EXEC, 'mmap', '[test-code]');
  aspace.mapFixed(DATA, 0x2000, PROT_READ | PROT_WRITE, 'mmap', '[test-data]');
  aspace.mapFixed(STACK, 0x2000, PROT_READ | PROT_WRITE, 'mmap', '[test-stack]');
});

interface Init {
  /** ST(0), ST(1)… as 80-bit patterns (valid registers). */
  st?: bigint[];
  top?: number;
  fcw?: number;
  fsw?: number;
  regs?: Partial<Record<GprName, bigint | number>>;
  mem?: Record<number, number[]>;
}

interface Result {
  out: AtomicOutcome;
  done: boolean;
  tc: ThreadContext;
  top: number;
  fsw: number;
  fcw: number;
  ftw: number;
  /** ST(i) as an 80-bit pattern, or null when empty. */
  st(i: number): bigint | null;
  r(name: GprName): bigint;
  arith: number;
  u64(addr: number): bigint;
  bytes(addr: number, n: number): number[];
}

const le = (v: bigint, n = 8): number[] => Array.from({ length: n }, (_, i) => Number((BigInt.asUintN(64, v) >> BigInt(8 * i)) & 0xffn));
const dbl = (x: number): number[] => le(d2b(x));

function run(hex: string, init: Init = {}): Result {
  const code = Buffer.from(`${hex.replace(/\s+/g, '')}0f0b`, 'hex');
  const page = new Uint8Array(0x1000).fill(0xcc);
  page.set(code);
  aspace.writeUnchecked(CODE, page);
  aspace.writeUnchecked(DATA, new Uint8Array(0x2000));
  for (const [addr, data] of Object.entries(init.mem ?? {})) aspace.writeUnchecked(Number(addr), Uint8Array.from(data));
  const cpu = new AtomicCPU({ aspace });
  const tc = initialThreadContext(BigInt(CODE), BigInt(STACK + 0x1000));
  tc.gpr[GPR_NAMES.indexOf('rdi')] = BigInt(DATA);
  for (const [name, v] of Object.entries(init.regs ?? {})) tc.gpr[GPR_NAMES.indexOf(name as GprName)] = BigInt.asUintN(64, BigInt(v));
  const top = init.top ?? 0;
  let ftw = 0;
  (init.st ?? []).forEach((v, i) => {
    F.writeF80(x80(v), tc.x87.st, i * 10);
    ftw |= 1 << ((top + i) & 7);
  });
  tc.x87 = { ...tc.x87, fcw: init.fcw ?? 0x37f, fsw: ((init.fsw ?? 0) & ~0x3800) | (top << 11), ftw };
  cpu.setThreadContext(tc);
  const out = cpu.run(10_000);
  const end = cpu.getThreadContext();
  const done = out.kind === 'faulted' && out.report.signal === 'SIGILL' && Number(end.rip) === CODE + code.length - 2;
  const t = (end.x87.fsw >> 11) & 7;
  return {
    out,
    done,
    tc: end,
    top: t,
    fsw: end.x87.fsw,
    fcw: end.x87.fcw,
    ftw: end.x87.ftw,
    st: (i) => ((end.x87.ftw >> ((t + i) & 7)) & 1 ? bits(F.readF80(end.x87.st, i * 10)) : null),
    r: (name) => end.gpr[GPR_NAMES.indexOf(name)]!,
    arith: Number(end.rflags) & 0x8d5,
    u64: (addr) => aspace.readU64(addr),
    bytes: (addr, n) => Array.from(aspace.read(addr, n)),
  };
}

function ok(hex: string, init: Init = {}): Result {
  const res = run(hex, init);
  if (!res.done) throw new Error(`did not reach the final ud2: ${JSON.stringify(res.out)}`);
  return res;
}

const ONE = 0x3fff_8000000000000000n;
const TWO = 0x4000_8000000000000000n;

describe('x87 instructions on the atomic CPU', () => {
  it('fld m64 ×2, faddp, fstp m64: 0.1 + 0.2 (the sum is exact in 64 bits), stack empty again', () => {
    const res = ok('dd07 dd4708 dec1 dd5f10' /* fld [rdi]; fld [rdi+8]; faddp; fstp [rdi+16] */, {
      mem: { [DATA]: [...dbl(0.1), ...dbl(0.2)] },
    });
    expect(res.u64(DATA + 16)).toBe(0x3fd3333333333334n);
    expect(res.fsw).toBe(PE | C1);
    expect(res.ftw).toBe(0);
    expect(res.top).toBe(0);
  });

  it('precision control: 1/3 with PC = 24, 53, 64 and RC toward zero', () => {
    const third = (fcw: number) => ok('d9e8 dd07 def9' /* fld1; fld [rdi]; fdivp */, { fcw, mem: { [DATA]: dbl(3) } });
    expect(third(0x07f).st(0)).toBe(0x3ffd_aaaaab0000000000n);
    expect(third(0x07f).fsw).toBe(0x3800 | C1 | PE);
    expect(third(0x27f).st(0)).toBe(0x3ffd_aaaaaaaaaaaaa800n);
    expect(third(0x27f).fsw).toBe(0x3800 | PE);
    expect(third(0x37f).st(0)).toBe(0x3ffd_aaaaaaaaaaaaaaabn);
    expect(third(0xf7f).st(0)).toBe(0x3ffd_aaaaaaaaaaaaaaaan);
  });

  it('fistp/fisttp: rounding control, C1 on round-up, the integer indefinite on overflow', () => {
    const ist = (x: number, fcw = 0x37f, op = 'db5f10') => ok(`dd07 ${op}`, { fcw, mem: { [DATA]: dbl(x) } });
    let r = ist(2.5);
    expect(r.bytes(DATA + 16, 4)).toEqual([2, 0, 0, 0]);
    expect(r.fsw).toBe(PE);
    r = ist(2.5, 0x37f | RC_UP);
    expect(r.bytes(DATA + 16, 4)).toEqual([3, 0, 0, 0]);
    expect(r.fsw).toBe(PE | C1);
    expect(ist(-2.5, 0x37f | RC_DOWN).bytes(DATA + 16, 4)).toEqual([0xfd, 0xff, 0xff, 0xff]);
    expect(ist(-2.7, 0x37f, 'db4f10' /* fisttp dword [rdi+16] */).bytes(DATA + 16, 4)).toEqual([0xfe, 0xff, 0xff, 0xff]);
    r = ist(1e10);
    expect(r.bytes(DATA + 16, 4)).toEqual([0, 0, 0, 0x80]);
    expect(r.fsw).toBe(IE);
    expect(ist(-1e30, 0x37f, 'df7f10' /* fistp qword [rdi+16] */).u64(DATA + 16)).toBe(0x8000000000000000n);
    const fild = ok('df2f dd5f10' /* fild qword [rdi]; fstp qword [rdi+16] */, { mem: { [DATA]: le(-(2n ** 62n) - 1n) } });
    expect(fild.u64(DATA + 16)).toBe(d2b(-(2 ** 62)));
    expect(fild.fsw).toBe(PE);
  });

  it('stack overflow and underflow: IE + SF (C1 = 1 / 0) and the real indefinite', () => {
    const over = ok(`${'d9e8'.repeat(9)} dfe0` /* 9 × fld1; fnstsw ax */);
    expect(over.fsw).toBe(0x3800 | C1 | SF | IE);
    expect(Number(over.r('rax') & 0xffffn)).toBe(0x3a41);
    expect(over.st(0)).toBe(INDEFINITE);
    expect(over.st(1)).toBe(ONE);
    expect(over.ftw).toBe(0xff);
    const under = ok('d8c1' /* fadd st0, st1 with st1 empty */, { st: [ONE] });
    expect(under.fsw).toBe(SF | IE);
    expect(under.st(0)).toBe(INDEFINITE);
    const store = ok('dd5f10' /* fstp qword [rdi+16], empty */);
    expect(store.u64(DATA + 16)).toBe(0xfff8000000000000n);
    expect(store.top).toBe(1);
  });

  it('fcomi/fucomip set ZF/PF/CF (and clear OF/SF/AF); fcom sets C3/C2/C0; pops', () => {
    const cmp = (a: number, b: number) => ok('dd4708 dd07 dfe9' /* fld [rdi+8]; fld [rdi]; fucomip */, { mem: { [DATA]: [...dbl(a), ...dbl(b)] } });
    expect(cmp(1, 2).arith).toBe(CF);
    expect(cmp(2, 2).arith).toBe(ZF);
    expect(cmp(3, 2).arith).toBe(0);
    const un = cmp(NaN, 2);
    expect(un.arith).toBe(ZF | PF | CF);
    expect(un.fsw).toBe(0x3800); // quiet NaN: no IE for fucomi
    expect(un.st(0)).toBe(TWO);
    const sig = ok('dbf1' /* fcomi st0, st1 */, { st: [0x7fff_c000000000000000n, ONE], regs: {} });
    expect(sig.fsw & IE).toBe(IE);
    expect(ok('d8d1' /* fcom st1 */, { st: [ONE, TWO] }).fsw).toBe(C0);
    expect(ok('d8d1', { st: [TWO, TWO] }).fsw).toBe(C3);
    expect(ok('d8d1', { st: [TWO, ONE] }).fsw).toBe(0);
    const pp = ok('ded9' /* fcompp */, { st: [TWO, ONE] });
    expect(pp.ftw).toBe(0);
    expect(pp.top).toBe(2);
  });

  it('fxam: class and sign in C3/C2/C1/C0, empty registers included', () => {
    const cls = (st: bigint[]) => ok('d9e5', { st }).fsw & (C3 | C2 | C1 | C0);
    expect(cls([0xffff_8000000000000000n])).toBe(C2 | C0 | C1); // −∞
    expect(cls([0n])).toBe(C3);
    expect(cls([ONE])).toBe(C2);
    expect(cls([0x0000_0000000000000001n])).toBe(C3 | C2);
    expect(cls([INDEFINITE])).toBe(C0 | C1);
    expect(cls([])).toBe(C3 | C0);
  });

  it('fprem: the quotient bits in C0/C3/C1, a partial reduction sets C2', () => {
    const r = ok('dd4708 dd07 d9f8' /* fld [rdi+8]; fld [rdi]; fprem */, { mem: { [DATA]: [...dbl(10), ...dbl(3)] } });
    expect(r.st(0)).toBe(ONE);
    expect(r.fsw).toBe(0x3000 | C3 | C1); // Q = 3
    const p = ok('d9f8', { st: [0x40c7_c000000000000001n, 0x3fff_a000000000000000n] });
    expect(p.fsw).toBe(C2);
    expect(p.st(0)).toBe(0x409d_8000040000000000n);
  });

  it('fsqrt, frndint, fscale, fchs, fabs, fxch, constants', () => {
    expect(ok('d9fa', { st: [TWO] }).st(0)).toBe(0x3fff_b504f333f9de6484n);
    expect(ok('d9fc', { st: [0xc000_a000000000000000n] }).st(0)).toBe(0xc000_8000000000000000n); // −2.5 → −2
    expect(ok('d9fc', { st: [0xc000_a000000000000000n], fcw: 0x37f | RC_DOWN }).st(0)).toBe(0xc000_c000000000000000n); // → −3
    expect(ok('d9fd', { st: [ONE, 0x4000_c000000000000000n] }).st(0)).toBe(0x4002_8000000000000000n); // 1·2^3
    expect(ok('d9e0', { st: [ONE] }).st(0)).toBe(0xbfff_8000000000000000n);
    expect(ok('d9e1', { st: [0xbfff_8000000000000000n] }).st(0)).toBe(ONE);
    const x = ok('d9ca' /* fxch st2 */, { st: [ONE, 0n, TWO] });
    expect([x.st(0), x.st(1), x.st(2)]).toEqual([TWO, 0n, ONE]);
    const c = ok('d9eb d9ee d9e8' /* fldpi; fldz; fld1 */);
    expect([c.st(0), c.st(1), c.st(2)]).toEqual([ONE, 0n, 0x4000_c90fdaa22168c235n]);
  });

  it('the register file is kept relative to TOP (FXSAVE order) with physical tags', () => {
    const res = ok('d9e8 d9ee 480fae4740' /* fld1; fldz; fxsave64 [rdi+64] */);
    expect(res.top).toBe(6);
    expect(res.ftw).toBe(0xc0); // R6, R7
    expect(res.bytes(DATA + 64 + 4, 1)).toEqual([0xc0]);
    expect(res.bytes(DATA + 64 + 32, 10)).toEqual(Array(10).fill(0)); // slot 0 = ST(0) = +0
    expect(res.bytes(DATA + 64 + 48, 10)).toEqual(le(ONE & ((1n << 64n) - 1n)).concat([0xff, 0x3f]));
    // a pop keeps the physical register's contents: it reappears as ST(7), tagged empty
    const popped = ok('d9e8 ddd8' /* fld1; fstp st0 */, { st: [] });
    expect(popped.ftw).toBe(0);
    expect(bits(F.readF80(popped.tc.x87.st, 70))).toBe(ONE);
  });

  it('fnstenv/fldenv: the 28-byte image (full tag word, reserved halves 0xffff), TOP restored', () => {
    const res = ok('d9ee d9e8 d937 d9f7 d927' /* fldz; fld1; fnstenv [rdi]; fincstp; fldenv [rdi] */);
    expect(Buffer.from(res.bytes(DATA, 28)).toString('hex')).toBe('7f03ffff0030ffffff4fffff0200400000000000000000000000ffff');
    expect(res.top).toBe(6);
    expect([res.st(0), res.st(1)]).toEqual([ONE, 0n]);
    expect(res.fcw).toBe(0x37f);
    // fnstenv masks every exception afterwards
    expect(ok('d92f d977 10' /* fldcw [rdi]; fnstenv [rdi+16] */, { mem: { [DATA]: [0x40, 0x03] } }).fcw).toBe(0x37f);
  });

  it('an unmasked exception leaves the stack alone, sets ES, and the next x87 instruction raises #MF', () => {
    // fldcw (ZE unmasked); fld1; fldz; fdivp → ZE pending
    const res = ok('d92f d9e8 d9ee def9', { mem: { [DATA]: [0x7b, 0x03] } });
    expect(res.fsw).toBe(0x3000 | 0x8000 | ES | ZE);
    expect([res.st(0), res.st(1)]).toEqual([0n, ONE]);
    const mf = run('d92f d9e8 d9ee def9 d9e8', { mem: { [DATA]: [0x7b, 0x03] } });
    if (mf.out.kind !== 'faulted') throw new Error('expected #MF');
    expect(mf.out.report.vector).toBe(16);
    expect(mf.out.report.signal).toBe('SIGFPE');
    // an unmasked overflow with a register destination stores the bias-adjusted value
    const ov = ok('d8c9' /* fmul st0, st1 */, { st: [0x7ffe_ffffffffffffffffn, 0x7ffe_ffffffffffffffffn], fcw: 0x377 });
    expect(ov.st(0)).toBe(0x5ffe_fffffffffffffffen);
    expect(ov.fsw).toBe(0x8000 | ES | PE | OE);
  });
});

// --- against the host CPU

/** Deterministic generator (a reproducer is the case's seed). */
class Rng {
  constructor(private s: number) {}
  next(): number {
    this.s = (Math.imul(this.s, 1103515245) + 12345) & 0x7fffffff;
    return this.s / 0x80000000;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  u64(): bigint {
    return (BigInt(this.int(0x100000000)) << 32n) | BigInt(this.int(0x100000000));
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)]!;
  }
}

const I = 1n << 63n;

/** An interesting F80 as [sign, exponent, significand]: normals near `base`, few-bit values, specials. */
function randF80(g: Rng, base: number): [number, number, bigint] {
  const sign = g.int(2);
  const k = g.int(100);
  const lowZeros = () => ~((1n << BigInt(g.int(64))) - 1n);
  if (k < 40) return [sign, base + g.int(9) - 4, I | g.u64()];
  if (k < 50) return [sign, base + g.int(9) - 4, (I | g.u64()) & lowZeros()];
  if (k < 55) return [sign, 0x3fff + g.int(64), (I | g.u64()) & lowZeros()]; // integers
  if (k < 60) return [sign, g.int(3), ((g.int(2) ? I : 0n) | g.u64()) >> BigInt(g.int(64))]; // denormals
  if (k < 64) return [sign, 0x7ffe - g.int(3), I | g.u64()];
  if (k < 67) return [sign, 0, 0n];
  if (k < 70) return [sign, 0x7fff, I];
  if (k < 73) return [sign, 0x7fff, I | (1n << 62n) | (g.u64() >> 2n)]; // QNaN
  if (k < 76) return [sign, 0x7fff, I | (g.u64() >> 2n) | 1n]; // SNaN
  if (k < 77) return [sign, g.int(0x7fff) + 1, g.u64() & ~I]; // unsupported
  if (k < 85) return [sign, 0x3fff + g.int(40) - 20, (I | g.u64()) & ~0x7ffn]; // f64-exact
  if (k < 90) return [sign, 0x3fff - 1022 - g.int(5), I | g.u64()]; // f64 denormal boundary
  if (k < 95) return [sign, 0x3fff - 126 - g.int(30), I | g.u64()]; // f32 denormal boundary
  return [sign, 0x3fff + 127 + g.int(4) - 2, I | g.u64()]; // f32 overflow boundary
}

type MemKind = 'f32' | 'f64' | 'f80' | 'i16' | 'i32' | 'i64' | undefined;

interface Case {
  code: Uint8Array;
  context: ThreadContext;
  scratch: Uint8Array;
}

function randomCase(g: Rng, hex: string, mem: MemKind, opts: { pEmpty: number; randomMasks: boolean; base?: number }): Case {
  const base = (opts.base ?? 0x3fff) + g.int(5) - 2;
  const context = initialThreadContext(BigInt(SNIPPET_CODE_ADDR), BigInt(STACK_START));
  context.gpr[GPR_NAMES.indexOf('rdi')] = BigInt(SCRATCH_ADDR);
  const top = g.int(8);
  const st = new Uint8Array(80);
  let ftw = 0;
  for (let i = 0; i < 8; i++) {
    const [s, e, m] = randF80(g, base);
    F.writeF80({ sign: s, exp: e & 0x7fff, sig: m & ((1n << 64n) - 1n) }, st, i * 10);
    if (g.next() >= opts.pEmpty) ftw |= 1 << ((top + i) & 7);
  }
  let fcw = 0x37f & ~0xf00;
  fcw |= (g.int(4) << 10) | (g.pick([0, 1, 2, 3, 3, 3]) << 8);
  if (opts.randomMasks) fcw = (fcw & ~0x3f) | g.int(64) | (g.int(2) ? 0x18 : 0);
  // random condition codes, and (only with everything masked) random sticky flags
  let fsw = (g.int(2) ? 0x4700 : 0) & g.int(0x10000);
  if (!opts.randomMasks && g.int(4) === 0) fsw |= g.int(0x80) & 0x7f;
  context.x87 = { fcw, fsw: fsw | (top << 11), ftw, fop: 0, fip: 0n, fdp: 0n, st };
  context.rflags = BigInt((g.int(0x1000) & 0x8d5) | 2);
  const scratch = new Uint8Array(SCRATCH_SIZE);
  const dv = new DataView(scratch.buffer);
  const [s, e, m] = randF80(g, base);
  if (mem === 'f80') F.writeF80({ sign: s, exp: e & 0x7fff, sig: m & ((1n << 64n) - 1n) }, scratch, 0);
  else if (mem === 'f64') {
    const be = e === 0x7fff ? 0x7ff : Math.min(Math.max(e - 0x3fff + 1023, 0), 0x7fe);
    dv.setBigUint64(0, (BigInt(s) << 63n) | (BigInt(be) << 52n) | ((m >> 11n) & ((1n << 52n) - 1n)) | (be === 0 ? BigInt(g.int(2)) : 0n), true);
  } else if (mem === 'f32') {
    const be = e === 0x7fff ? 0xff : Math.min(Math.max(e - 0x3fff + 127, 0), 0xfe);
    dv.setUint32(0, ((s << 31) | (be << 23) | Number((m >> 40n) & 0x7fffffn) | (be === 0 ? g.int(2) : 0)) >>> 0, true);
  } else if (mem === 'i16') dv.setInt16(0, g.pick([g.int(65536) - 32768, g.int(200) - 100, -32768, 32767, 0]), true);
  else if (mem === 'i32') dv.setInt32(0, g.pick([g.int(2 ** 32) - 2 ** 31, g.int(200) - 100, -(2 ** 31), 2 ** 31 - 1, 0]), true);
  else if (mem === 'i64') dv.setBigInt64(0, g.pick([BigInt.asIntN(64, g.u64()), BigInt(g.int(200) - 100), -(1n << 63n), (1n << 63n) - 1n, 0n]), true);
  return { code: Uint8Array.from(Buffer.from(`${hex}0f0b`, 'hex')), context, scratch };
}

function x87Text(x: ThreadContext['x87']): string {
  const t = (x.fsw >> 11) & 7;
  const regs: string[] = [];
  for (let i = 0; i < 8; i++) {
    regs.push((x.ftw >> ((t + i) & 7)) & 1 ? F.f80Bits(F.readF80(x.st, i * 10)).toString(16).padStart(20, '0') : '--');
  }
  return `fcw=${x.fcw.toString(16)} fsw=${x.fsw.toString(16)} ftw=${x.ftw.toString(16)} st=[${regs.join(' ')}]`;
}

/** Register-operand forms take a random st(i) in the low three bits of their last byte. */
const r = (op: string): string => `${op}*`;
const OPS: [string, string, MemKind?][] = [
  ['fld m32', 'd907', 'f32'], ['fld m64', 'dd07', 'f64'], ['fld m80', 'db2f', 'f80'], ['fld st(i)', r('d9c0')],
  ['fild m16', 'df07', 'i16'], ['fild m32', 'db07', 'i32'], ['fild m64', 'df2f', 'i64'],
  ['fst m32', 'd917'], ['fstp m32', 'd91f'], ['fst m64', 'dd17'], ['fstp m64', 'dd1f'], ['fstp m80', 'db3f'],
  ['fst st(i)', r('ddd0')], ['fstp st(i)', r('ddd8')],
  ['fist m16', 'df17'], ['fistp m16', 'df1f'], ['fist m32', 'db17'], ['fistp m32', 'db1f'], ['fistp m64', 'df3f'],
  ['fisttp m16', 'df0f'], ['fisttp m32', 'db0f'], ['fisttp m64', 'dd0f'],
  ['fxch', r('d9c8')], ['fchs', 'd9e0'], ['fabs', 'd9e1'],
  ['fadd st,st(i)', r('d8c0')], ['fsub st,st(i)', r('d8e0')], ['fsubr st,st(i)', r('d8e8')], ['fmul st,st(i)', r('d8c8')],
  ['fdiv st,st(i)', r('d8f0')], ['fdivr st,st(i)', r('d8f8')],
  ['fadd st(i),st', r('dcc0')], ['fsub st(i),st', r('dce8')], ['fsubr st(i),st', r('dce0')], ['fmul st(i),st', r('dcc8')],
  ['fdiv st(i),st', r('dcf8')], ['fdivr st(i),st', r('dcf0')],
  ['faddp', r('dec0')], ['fsubp', r('dee8')], ['fsubrp', r('dee0')], ['fmulp', r('dec8')], ['fdivp', r('def8')], ['fdivrp', r('def0')],
  ['fadd m32', 'd807', 'f32'], ['fmul m32', 'd80f', 'f32'], ['fsub m32', 'd827', 'f32'], ['fsubr m32', 'd82f', 'f32'],
  ['fdiv m32', 'd837', 'f32'], ['fdivr m32', 'd83f', 'f32'],
  ['fadd m64', 'dc07', 'f64'], ['fmul m64', 'dc0f', 'f64'], ['fsub m64', 'dc27', 'f64'], ['fsubr m64', 'dc2f', 'f64'],
  ['fdiv m64', 'dc37', 'f64'], ['fdivr m64', 'dc3f', 'f64'],
  ['fiadd m32', 'da07', 'i32'], ['fimul m32', 'da0f', 'i32'], ['fisub m32', 'da27', 'i32'], ['fisubr m32', 'da2f', 'i32'],
  ['fidiv m32', 'da37', 'i32'], ['fidivr m32', 'da3f', 'i32'],
  ['fiadd m16', 'de07', 'i16'], ['fimul m16', 'de0f', 'i16'], ['fidiv m16', 'de37', 'i16'], ['fidivr m16', 'de3f', 'i16'],
  ['fsqrt', 'd9fa'], ['frndint', 'd9fc'], ['fscale', 'd9fd'], ['fprem', 'd9f8'], ['fprem1', 'd9f5'], ['fxtract', 'd9f4'],
  ['fcom st(i)', r('d8d0')], ['fcomp st(i)', r('d8d8')], ['fcompp', 'ded9'], ['fucom', r('dde0')], ['fucomp', r('dde8')], ['fucompp', 'dae9'],
  ['fcom m32', 'd817', 'f32'], ['fcomp m64', 'dc1f', 'f64'], ['ficom m16', 'de17', 'i16'], ['ficomp m32', 'da1f', 'i32'],
  ['fcomi', r('dbf0')], ['fcomip', r('dff0')], ['fucomi', r('dbe8')], ['fucomip', r('dfe8')],
  ['ftst', 'd9e4'], ['fxam', 'd9e5'], ['ffree', r('ddc0')], ['ffreep', r('dfc0')], ['fincstp', 'd9f7'], ['fdecstp', 'd9f6'],
  ['fcmovb', r('dac0')], ['fcmove', r('dac8')], ['fcmovbe', r('dad0')], ['fcmovu', r('dad8')],
  ['fcmovnb', r('dbc0')], ['fcmovne', r('dbc8')], ['fcmovnbe', r('dbd0')], ['fcmovnu', r('dbd8')],
  ['fld1', 'd9e8'], ['fldz', 'd9ee'], ['fldpi', 'd9eb'], ['fldl2t', 'd9e9'], ['fldl2e', 'd9ea'], ['fldlg2', 'd9ec'], ['fldln2', 'd9ed'],
  ['fnstenv', 'd937'], ['fnsave', 'dd37'], ['fldenv', 'd937 d9f7 d9e8 d927'], ['frstor', 'dd37 d9e8 dd27'],
];

describeKvm('x87 instructions against the host CPU (random operands)', () => {
  let kvm: KvmSnippetRunner;
  let js: AtomicSnippetRunner;
  beforeAll(() => {
    kvm = KvmSnippetRunner.create();
    js = new AtomicSnippetRunner((o) => new AtomicCPU(o), kvm);
  });
  afterAll(() => kvm.close());

  /** Runs one case on both CPUs; a description of the differences, or null. */
  function compareCase(c: Case): string | null {
    const input = () => ({ code: c.code, context: { ...c.context, x87: { ...c.context.x87, st: c.context.x87.st.slice() } }, scratch: c.scratch.slice(), stack: new Uint8Array(STACK_SIZE) });
    const k = kvm.run(input());
    const j = js.run(input());
    if (j.kind !== 'ran') return `JS: ${j.kind} ${'message' in j ? j.message : ''}`;
    const a = k.final.context;
    const b = j.result.final.context;
    const out: string[] = [];
    if (k.end.vector !== j.result.end.vector || k.end.rip !== j.result.end.rip) out.push(`end: host #${k.end.vector} js #${j.result.end.vector}`);
    if (x87Text(a.x87) !== x87Text(b.x87)) out.push(`host ${x87Text(a.x87)}\n  js   ${x87Text(b.x87)}`);
    if ((a.rflags & 0x8d5n) !== (b.rflags & 0x8d5n)) out.push(`rflags: host ${a.rflags.toString(16)} js ${b.rflags.toString(16)}`);
    const ma = Buffer.from(k.final.scratch.subarray(0, 128)).toString('hex');
    const mb = Buffer.from(j.result.final.scratch.subarray(0, 128)).toString('hex');
    if (ma !== mb) out.push(`memory: host ${ma}\n  js     ${mb}`);
    if (out.length === 0) return null;
    return `${Buffer.from(c.code).toString('hex')} from ${x87Text(c.context.x87)} mem ${Buffer.from(c.scratch.subarray(0, 10)).toString('hex')} rflags ${c.context.rflags.toString(16)}\n  ${out.join('\n  ')}`;
  }

  const passes = [
    { name: 'masked exceptions', n: 300, pEmpty: 0.1, randomMasks: false },
    { name: 'stack faults', n: 60, pEmpty: 0.5, randomMasks: false },
    { name: 'unmasked exceptions', n: 100, pEmpty: 0.1, randomMasks: true },
  ];
  for (const pass of passes) {
    it(`every instruction, ${pass.n} random states each (${pass.name})`, () => {
      const failures: string[] = [];
      let seed = 1;
      for (const [name, pattern, mem] of OPS) {
        const g = new Rng(seed++ * 7919 + pass.n);
        let bad = 0;
        for (let n = 0; n < pass.n; n++) {
          const hex = pattern.endsWith('*')
            ? pattern.slice(0, -3) + (parseInt(pattern.slice(-3, -1), 16) + g.int(8)).toString(16).padStart(2, '0')
            : pattern.replace(/\s+/g, '');
          const res = compareCase(randomCase(g, hex, mem, pass));
          if (res !== null && bad++ < 2) failures.push(`[${name}] ${res}`);
        }
      }
      expect(failures.join('\n')).toBe('');
    });
  }

  it('arithmetic near the underflow and overflow thresholds', () => {
    const failures: string[] = [];
    const arith: [string, MemKind?][] = [['d8c9'], ['d8f1'], ['d8c1'], ['d8e1'], ['d9fa'], ['d9fd'], ['dd17'], ['d917'], ['dc0f', 'f64'], ['d837', 'f32']];
    for (const base of [3, 8191, 8192, 0x3fff - 1022, 0x3fff - 126, 0x3fff + 1023, 24575, 32760]) {
      const g = new Rng(base);
      for (const [hex, mem] of arith) {
        for (let n = 0; n < 150; n++) {
          const res = compareCase(randomCase(g, hex, mem, { pEmpty: 0, randomMasks: n % 3 === 0, base }));
          if (res !== null && failures.length < 10) failures.push(res);
        }
      }
    }
    expect(failures.join('\n')).toBe('');
  });
});
