/**
 * Multiply and divide: mul/imul (1-, 2- and 3-operand), div/idiv with #DE on a zero divisor
 * and on quotient overflow, BMI2 mulx, and ADX adcx/adox.
 *
 * mul/imul set CF = OF = "the high half is significant"; SF, ZF, AF and PF are architecturally
 * undefined and are set as Intel hardware does (checked against KVM). div/idiv leave all six
 * flags undefined; here too the values are Intel's.
 */
import { Mnemonic } from 'iced-x86';
import { Gpr } from '../../guest/threadContext.js';
import { GuestException, VEC_DE } from '../errors.js';
import { arithFlags, getCF, setEager } from '../flags.js';
import { operand } from '../operands.js';
import { CF, OF, ZF, type CpuState } from '../state.js';
import type { DecodeInfo } from '../decodeInfo.js';
import { define, NotImplemented, type Exec } from './registry.js';
import { hiOf, loOf, muls32, muls64, mulu32, mulu64, R, szp, szp64, toBig, TWO32 } from './int-common.js';

const RAX = Gpr.rax * 2;
const RDX = Gpr.rdx * 2;

/**
 * Flags after a multiply: CF = OF = overflow; Intel sets SF and PF from the low half of the
 * result, clears ZF and AF.
 */
function mulFlags(s: CpuState, low: number, size: number, overflow: boolean): void {
  setEager(s, (szp(low, size) & ~ZF) | (overflow ? CF | OF : 0));
}

function mulFlags64(s: CpuState, lo: number, hi: number, overflow: boolean): void {
  setEager(s, (szp64(lo, hi) & ~ZF) | (overflow ? CF | OF : 0));
}

/** One-operand mul/imul: the accumulator times the operand, into rdx:rax (ax for bytes). */
function mulAcc(signed: boolean) {
  return (d: DecodeInfo): Exec => {
    const src = operand(d, 0);
    const get = src.get;
    switch (src.size) {
      case 1:
        return (s) => {
          const b = get(s);
          const a = s.g[RAX]! & 0xff;
          let p: number;
          let overflow: boolean;
          if (signed) {
            p = ((a << 24) >> 24) * ((b << 24) >> 24);
            overflow = p < -128 || p > 127;
          } else {
            p = a * b;
            overflow = p > 0xff;
          }
          s.g[RAX] = (s.g[RAX]! & ~0xffff) | (p & 0xffff);
          mulFlags(s, p & 0xff, 1, overflow);
        };
      case 2:
        return (s) => {
          const b = get(s);
          const a = s.g[RAX]! & 0xffff;
          let p: number;
          let overflow: boolean;
          if (signed) {
            p = ((a << 16) >> 16) * ((b << 16) >> 16);
            overflow = p < -32768 || p > 32767;
          } else {
            p = a * b;
            overflow = p > 0xffff;
          }
          s.g[RAX] = (s.g[RAX]! & ~0xffff) | (p & 0xffff);
          s.g[RDX] = (s.g[RDX]! & ~0xffff) | ((p >> 16) & 0xffff);
          mulFlags(s, p & 0xffff, 2, overflow);
        };
      case 4:
        return (s) => {
          const b = get(s);
          const a = s.g[RAX]! >>> 0;
          if (signed) muls32(a, b);
          else mulu32(a, b);
          const lo = R.r0;
          const hi = R.r1;
          s.g[RAX] = lo;
          s.g[RAX + 1] = 0;
          s.g[RDX] = hi;
          s.g[RDX + 1] = 0;
          mulFlags(s, lo, 4, signed ? hi !== ((lo | 0) >> 31) >>> 0 : hi !== 0);
        };
      default:
        return (s) => {
          const bl = get(s);
          const bh = s.hi;
          const al = s.g[RAX]! >>> 0;
          const ah = s.g[RAX + 1]! >>> 0;
          if (signed) muls64(al, ah, bl, bh);
          else mulu64(al, ah, bl, bh);
          const { r0, r1, r2, r3 } = R;
          s.g[RAX] = r0;
          s.g[RAX + 1] = r1;
          s.g[RDX] = r2;
          s.g[RDX + 1] = r3;
          let overflow: boolean;
          if (signed) {
            const ext = ((r1 | 0) >> 31) >>> 0;
            overflow = r2 !== ext || r3 !== ext;
          } else {
            overflow = r2 !== 0 || r3 !== 0;
          }
          mulFlags64(s, r0, r1, overflow);
        };
    }
  };
}

/** imul with an explicit destination: dst = a * b truncated; CF = OF = signed overflow. */
function imulTruncating(d: DecodeInfo): Exec {
  const dst = operand(d, 0);
  const size = dst.size;
  const a = d.ops.length === 3 ? operand(d, 1) : dst;
  const b = d.ops.length === 3 ? operand(d, 2, size) : operand(d, 1);
  const aget = a.get;
  const bget = b.get;
  const set = dst.set;
  if (size === 2) {
    return (s) => {
      const x = aget(s);
      const p = ((x << 16) >> 16) * ((bget(s) << 16) >> 16);
      const r = p & 0xffff;
      set(s, r, 0);
      mulFlags(s, r, 2, p < -32768 || p > 32767);
    };
  }
  if (size === 4) {
    return (s) => {
      const x = aget(s) | 0;
      const y = bget(s) | 0;
      const r = Math.imul(x, y) >>> 0;
      // The double product is exact whenever it fits in 32 bits, and rounds outside otherwise.
      const p = x * y;
      set(s, r, 0);
      mulFlags(s, r, 4, p < -2147483648 || p > 2147483647);
    };
  }
  return (s) => {
    const al = aget(s);
    const ah = s.hi;
    const bl = bget(s);
    const bh = s.hi;
    // The low 64 bits: al·bl in full plus the low halves of the cross products.
    mulu32(al, bl);
    const lo = R.r0;
    const hi = (R.r1 + Math.imul(al, bh) + Math.imul(ah, bl)) >>> 0;
    // Overflow: the product in doubles (relative error < 2^-50) decides unless it is within a
    // hair of ±2^63; then the exact 128-bit product does.
    const p = ((ah | 0) * TWO32 + al) * ((bh | 0) * TWO32 + bl);
    let overflow: boolean;
    if (p < 9.2233720368547e18 && p > -9.2233720368547e18) overflow = false;
    else if (p > 9.22337203685479e18 || p < -9.22337203685479e18) overflow = true;
    else {
      muls64(al, ah, bl, bh);
      const ext = ((hi | 0) >> 31) >>> 0;
      overflow = R.r2 !== ext || R.r3 !== ext;
    }
    set(s, lo, hi);
    mulFlags64(s, lo, hi, overflow);
  };
}

define(Mnemonic.Mul, mulAcc(false));
define(Mnemonic.Imul, (d) => (d.ops.length === 1 ? mulAcc(true)(d) : imulTruncating(d)));

// --- division

function de(): never {
  throw new GuestException(VEC_DE, 0, 0);
}

/**
 * Unsigned (nHi:nLo) / v for a 32-bit divisor with nHi < v (so the quotient fits in 32 bits):
 * long division on 16-bit digits, every step exact in doubles. Returns the quotient; the
 * remainder is left in `divRem`.
 */
let divRem = 0;
function div64by32(nHi: number, nLo: number, v: number): number {
  const n1 = nHi * 65536 + (nLo >>> 16);
  const q1 = Math.floor(n1 / v);
  const r1 = n1 - q1 * v;
  const n0 = r1 * 65536 + (nLo & 0xffff);
  const q0 = Math.floor(n0 / v);
  divRem = n0 - q0 * v;
  return q1 * 65536 + q0;
}

const TWO64 = 1n << 64n;

function divBuilder(signed: boolean) {
  return (d: DecodeInfo): Exec => {
    const src = operand(d, 0);
    const get = src.get;
    switch (src.size) {
      case 1:
        return (s) => {
          const v = get(s);
          const ax = s.g[RAX]! & 0xffff;
          let q: number;
          let r: number;
          if (signed) {
            const dv = (v << 24) >> 24;
            if (dv === 0) de();
            const n = (ax << 16) >> 16;
            q = Math.trunc(n / dv);
            if (q < -128 || q > 127) de();
            r = n - q * dv;
          } else {
            if (v === 0) de();
            q = Math.floor(ax / v);
            if (q > 0xff) de();
            r = ax - q * v;
          }
          s.g[RAX] = (s.g[RAX]! & ~0xffff) | ((r & 0xff) << 8) | (q & 0xff);
        };
      case 2:
        return (s) => {
          const v = get(s);
          const n16 = ((s.g[RDX]! & 0xffff) << 16) | (s.g[RAX]! & 0xffff);
          let q: number;
          let r: number;
          if (signed) {
            const dv = (v << 16) >> 16;
            if (dv === 0) de();
            q = Math.trunc(n16 / dv);
            if (q < -32768 || q > 32767) de();
            r = n16 - q * dv;
          } else {
            if (v === 0) de();
            const n = n16 >>> 0;
            q = Math.floor(n / v);
            if (q > 0xffff) de();
            r = n - q * v;
          }
          s.g[RAX] = (s.g[RAX]! & ~0xffff) | (q & 0xffff);
          s.g[RDX] = (s.g[RDX]! & ~0xffff) | (r & 0xffff);
        };
      case 4:
        return (s) => {
          const v = get(s);
          const lo = s.g[RAX]! >>> 0;
          const hi = s.g[RDX]! >>> 0;
          let q: number;
          let r: number;
          if (signed) {
            const dv = v | 0;
            if (dv === 0) de();
            if (hi === ((lo | 0) >> 31) >>> 0) {
              const n = lo | 0;
              q = Math.trunc(n / dv);
              if (q > 2147483647) de(); // -2^31 / -1
              r = n - q * dv;
            } else {
              const n = BigInt.asIntN(64, toBig(lo, hi));
              const qb = n / BigInt(dv);
              if (qb < -2147483648n || qb > 2147483647n) de();
              q = Number(qb);
              r = Number(n - qb * BigInt(dv));
            }
          } else {
            if (hi >= v) de(); // also v = 0
            if (hi === 0) {
              q = Math.floor(lo / v);
              r = lo - q * v;
            } else {
              q = div64by32(hi, lo, v);
              r = divRem;
            }
          }
          s.g[RAX] = q;
          s.g[RAX + 1] = 0;
          s.g[RDX] = r;
          s.g[RDX + 1] = 0;
        };
      default:
        return (s) => {
          const vl = get(s);
          const vh = s.hi;
          const al = s.g[RAX]! >>> 0;
          const ah = s.g[RAX + 1]! >>> 0;
          const dl = s.g[RDX]! >>> 0;
          const dh = s.g[RDX + 1]! >>> 0;
          if (!signed) {
            if (vl === 0 && vh === 0) de();
            if (dl === 0 && dh === 0 && ah === 0 && vh === 0) {
              const q = Math.floor(al / vl);
              setRaxRdx(s, q, 0, al - q * vl, 0);
              return;
            }
            if (vh === 0 && dh === 0 && dl < vl) {
              // 96-bit dividend by a 32-bit divisor: two long-division steps.
              const qh = div64by32(dl, ah, vl);
              const ql = div64by32(divRem, al, vl);
              setRaxRdx(s, ql, qh, divRem, 0);
              return;
            }
            const n = (toBig(dl, dh) << 64n) | toBig(al, ah);
            const dv = toBig(vl, vh);
            const q = n / dv;
            if (q >= TWO64) de();
            const r = n - q * dv;
            setRaxRdx(s, loOf(q), hiOf(q), loOf(r), hiOf(r));
            return;
          }
          const dvSmall = vh === ((vl | 0) >> 31) >>> 0;
          if (vl === 0 && vh === 0) de();
          if (dvSmall && ah === ((al | 0) >> 31) >>> 0 && dl === ah && dh === ah) {
            // Both fit in 32 bits signed: exact in doubles, and the quotient cannot overflow.
            const n = al | 0;
            const dv = vl | 0;
            const q = Math.trunc(n / dv);
            const r = n - q * dv;
            setRaxRdx(s, q >>> 0, q < 0 ? 0xffffffff : 0, r >>> 0, r < 0 ? 0xffffffff : 0);
            return;
          }
          const n = BigInt.asIntN(128, (toBig(dl, dh) << 64n) | toBig(al, ah));
          const dv = BigInt.asIntN(64, toBig(vl, vh));
          const q = n / dv;
          if (q < -(1n << 63n) || q >= 1n << 63n) de();
          const r = n - q * dv;
          const qu = BigInt.asUintN(64, q);
          const ru = BigInt.asUintN(64, r);
          setRaxRdx(s, loOf(qu), hiOf(qu), loOf(ru), hiOf(ru));
        };
    }
  };
}

function setRaxRdx(s: CpuState, ql: number, qh: number, rl: number, rh: number): void {
  s.g[RAX] = ql;
  s.g[RAX + 1] = qh;
  s.g[RDX] = rl;
  s.g[RDX + 1] = rh;
}

define(Mnemonic.Div, divBuilder(false));
define(Mnemonic.Idiv, divBuilder(true));

/** mulx hi, lo, src: rdx × src unsigned, no flags; the high half is written last. */
define(Mnemonic.Mulx, (d) => {
  const hiDst = operand(d, 0);
  const loDst = operand(d, 1);
  const src = operand(d, 2);
  const get = src.get;
  const setHi = hiDst.set;
  const setLo = loDst.set;
  if (hiDst.size === 8) {
    return (s) => {
      const bl = get(s);
      const bh = s.hi;
      mulu64(s.g[RDX]! >>> 0, s.g[RDX + 1]! >>> 0, bl, bh);
      const { r0, r1, r2, r3 } = R;
      setLo(s, r0, r1);
      setHi(s, r2, r3);
    };
  }
  return (s) => {
    mulu32(s.g[RDX]! >>> 0, get(s));
    const { r0, r1 } = R;
    setLo(s, r0, 0);
    setHi(s, r1, 0);
  };
});

/** adcx (CF only) and adox (OF only): add with carry through one flag, the others untouched. */
function adx(flag: number) {
  return (d: DecodeInfo): Exec => {
    const dst = operand(d, 0);
    const src = operand(d, 1);
    if (dst.size !== 4 && dst.size !== 8) throw new NotImplemented('adx operand size');
    const get = dst.get;
    const set = dst.set;
    const sget = src.get;
    const wide = dst.size === 8;
    return (s) => {
      const f = arithFlags(s);
      const cin = flag === CF ? getCF(s) : f & OF ? 1 : 0;
      const a = get(s);
      const ah = s.hi;
      const b = sget(s);
      const bh = s.hi;
      const lo = a + b + cin;
      const c = lo >= TWO32 ? 1 : 0;
      let cout = c;
      let hi = 0;
      if (wide) {
        const h = ah + bh + c;
        cout = h >= TWO32 ? 1 : 0;
        hi = h - cout * TWO32;
      }
      set(s, lo - c * TWO32, hi);
      setEager(s, (f & ~flag) | (cout ? flag : 0));
    };
  };
}
define(Mnemonic.Adcx, adx(CF));
define(Mnemonic.Adox, adx(OF));
