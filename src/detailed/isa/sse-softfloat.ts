/**
 * Exact IEEE-754 binary32/binary64 arithmetic in BigInt, with x86 SSE rules: MXCSR rounding
 * control, DAZ/FTZ, tininess detected after rounding, the six exception flags, NaN propagation
 * (first NaN operand, quieted) and the "QNaN floating-point indefinite" for invalid operations.
 *
 * It is the slow path: the SSE files compute with JS doubles when the answer and the flags are
 * certain to match (round-to-nearest, normal operands and result, PE already set), and come
 * here otherwise. Values travel as raw bit patterns (bigint), never through a JS number, so NaN
 * payloads survive.
 *
 * Pre-computation conditions follow the SDM's priority (Russinoff, "SSE Pre-Computation
 * Exceptions"): SNaN operand (IE) > QNaN operand (no flag) > invalid operation (IE) > division
 * of a finite value by zero (ZE) > denormal operand (DE). They are reported in `SF.pre`; the
 * rounding flags (OE, UE, PE) in `SF.post`.
 */
import { MX_DAZ, MX_DE, MX_FTZ, MX_IE, MX_OE, MX_PE, MX_RC_SHIFT, MX_UE, MX_ZE } from './sse-common.js';

export interface Fmt {
  /** Precision in bits, hidden bit included. */
  readonly p: number;
  readonly bias: number;
  readonly emin: number;
  readonly emax: number;
  readonly fracBits: bigint;
  readonly fracMask: bigint;
  readonly expField: bigint;
  readonly signBit: bigint;
  readonly quietBit: bigint;
  readonly defaultNaN: bigint;
  readonly inf: bigint;
  readonly maxFinite: bigint;
  readonly hidden: bigint;
}

function fmt(p: number, ebits: number): Fmt {
  const bias = 2 ** (ebits - 1) - 1;
  const fracBits = BigInt(p - 1);
  const expField = (1n << BigInt(ebits)) - 1n;
  const signBit = 1n << BigInt(p - 1 + ebits);
  const inf = expField << fracBits;
  return {
    p,
    bias,
    emin: 1 - bias,
    emax: bias,
    fracBits,
    fracMask: (1n << fracBits) - 1n,
    expField,
    signBit,
    quietBit: 1n << (fracBits - 1n),
    defaultNaN: signBit | inf | (1n << (fracBits - 1n)),
    inf,
    maxFinite: inf - 1n,
    hidden: 1n << fracBits,
  };
}

export const F32 = fmt(24, 8);
export const F64 = fmt(53, 11);

/** Flags raised by the last calls (the caller clears them per instruction). */
export const SF = { pre: 0, post: 0 };

export const enum K {
  Zero,
  Finite,
  Inf,
  QNaN,
  SNaN,
}

export interface Unpacked {
  k: K;
  neg: boolean;
  /** Significand (integer) and exponent: value = m * 2^e, for Finite. */
  m: bigint;
  e: number;
  /** A denormal operand that was not flushed by DAZ (raises DE when used). */
  den: boolean;
  bits: bigint;
}

export function unpack(bits: bigint, f: Fmt, mx: number): Unpacked {
  const neg = (bits & f.signBit) !== 0n;
  const exp = (bits >> f.fracBits) & f.expField;
  const frac = bits & f.fracMask;
  if (exp === f.expField) {
    if (frac === 0n) return { k: K.Inf, neg, m: 0n, e: 0, den: false, bits };
    return { k: (frac & f.quietBit) !== 0n ? K.QNaN : K.SNaN, neg, m: 0n, e: 0, den: false, bits };
  }
  if (exp === 0n) {
    if (frac === 0n || (mx & MX_DAZ) !== 0) return { k: K.Zero, neg, m: 0n, e: 0, den: false, bits };
    return { k: K.Finite, neg, m: frac, e: f.emin - (f.p - 1), den: true, bits };
  }
  return { k: K.Finite, neg, m: frac | f.hidden, e: Number(exp) - f.bias - (f.p - 1), den: false, bits };
}

export function isNaNBits(bits: bigint, f: Fmt): boolean {
  return ((bits >> f.fracBits) & f.expField) === f.expField && (bits & f.fracMask) !== 0n;
}

export function bitLength(m: bigint): number {
  // m > 0
  return m.toString(2).length;
}

function zero(neg: boolean, f: Fmt): bigint {
  return neg ? f.signBit : 0n;
}

function infinity(neg: boolean, f: Fmt): bigint {
  return neg ? f.signBit | f.inf : f.inf;
}

/** m >> shift rounded by rc (0 nearest-even, 1 down, 2 up, 3 toward zero); `inexact` set. */
let inexact = false;
function roundShift(m: bigint, shift: number, neg: boolean, rc: number): bigint {
  if (shift <= 0) {
    inexact = false;
    return m << BigInt(-shift);
  }
  const sh = BigInt(shift);
  let q = m >> sh;
  const rem = m - (q << sh);
  inexact = rem !== 0n;
  if (!inexact) return q;
  switch (rc) {
    case 0: {
      const half = 1n << (sh - 1n);
      if (rem > half || (rem === half && (q & 1n) === 1n)) q++;
      break;
    }
    case 1:
      if (neg) q++;
      break;
    case 2:
      if (!neg) q++;
      break;
  }
  return q;
}

function inexactUnbounded(m: bigint, nb: number, neg: boolean, rc: number, f: Fmt): boolean {
  roundShift(m, nb - f.p, neg, rc);
  return inexact;
}

/**
 * Rounds the exact nonzero value (-1)^neg * m * 2^e to format f under MXCSR `mx` and packs it;
 * OE/UE/PE go to SF.post. For inexact inputs (quotients, roots) pass m with at least p+2
 * significant bits and a sticky 1 in the lowest bit.
 */
export function roundPack(neg: boolean, m: bigint, e: number, f: Fmt, mx: number): bigint {
  const rc = (mx >>> MX_RC_SHIFT) & 3;
  const nb = bitLength(m);
  const E = e + nb - 1;
  let tiny = false;
  if (E < f.emin) {
    // Tininess after rounding: round to p bits with an unbounded exponent.
    const q = roundShift(m, nb - f.p, neg, rc);
    const Er = E + (bitLength(q) > f.p ? 1 : 0);
    tiny = Er < f.emin;
  }
  const qexp = Math.max(E - f.p + 1, f.emin - f.p + 1);
  let q = roundShift(m, qexp - e, neg, rc);
  const inx = inexact;
  if (tiny) {
    if ((mx & 0x800) === 0) {
      // Unmasked underflow: the instruction stops (#XM); PE joins UE only when the result,
      // rounded to p bits with an unbounded exponent, is inexact (measured).
      SF.post |= MX_UE | (inexactUnbounded(m, nb, neg, rc, f) ? MX_PE : 0);
      return zero(neg, f);
    }
    if ((mx & MX_FTZ) !== 0) {
      SF.post |= MX_UE | MX_PE;
      return zero(neg, f);
    }
    if (inx) SF.post |= MX_UE;
  }
  if (q === 0n) {
    if (inx) SF.post |= MX_PE;
    return zero(neg, f);
  }
  const nq = bitLength(q);
  const Er = qexp + nq - 1;
  if (Er > f.emax) {
    // Unmasked overflow: likewise, PE only for an inexact unbounded-exponent result.
    if ((mx & 0x400) === 0) SF.post |= MX_OE | (inexactUnbounded(m, nb, neg, rc, f) ? MX_PE : 0);
    else SF.post |= MX_OE | MX_PE;
    const toInf = rc === 0 || (rc === 1 && neg) || (rc === 2 && !neg);
    return toInf ? infinity(neg, f) : (neg ? f.signBit : 0n) | f.maxFinite;
  }
  if (inx) SF.post |= MX_PE;
  const sign = neg ? f.signBit : 0n;
  if (Er < f.emin) return sign | q; // subnormal: biased exponent 0
  if (nq > f.p) q >>= BigInt(nq - f.p);
  return sign | (BigInt(Er + f.bias) << f.fracBits) | (q - f.hidden);
}

/** NaN operand handling shared by the arithmetic ops: the first NaN, quieted; IE for an SNaN. */
function nanResult(a: Unpacked, b: Unpacked | null, f: Fmt): bigint {
  if (a.k === K.SNaN || b?.k === K.SNaN) SF.pre |= MX_IE;
  const n = a.k === K.QNaN || a.k === K.SNaN ? a : b!;
  return n.bits | f.quietBit;
}

function isNaNK(k: K): boolean {
  return k === K.QNaN || k === K.SNaN;
}

function invalid(f: Fmt): bigint {
  SF.pre |= MX_IE;
  return f.defaultNaN;
}

function denormals(a: Unpacked, b: Unpacked | null): void {
  if (a.den || b?.den) SF.pre |= MX_DE;
}

export function add(abits: bigint, bbits: bigint, f: Fmt, mx: number, subtract: boolean): bigint {
  const a = unpack(abits, f, mx);
  const b = unpack(bbits, f, mx);
  if (isNaNK(a.k) || isNaNK(b.k)) return nanResult(a, b, f);
  const bneg = subtract ? !b.neg : b.neg;
  if (a.k === K.Inf || b.k === K.Inf) {
    if (a.k === K.Inf && b.k === K.Inf && a.neg !== bneg) return invalid(f);
    denormals(a, b);
    return a.k === K.Inf ? infinity(a.neg, f) : infinity(bneg, f);
  }
  denormals(a, b);
  const rc = (mx >>> MX_RC_SHIFT) & 3;
  if (a.k === K.Zero && b.k === K.Zero) {
    const neg = a.neg === bneg ? a.neg : rc === 1;
    return zero(neg, f);
  }
  let m: bigint;
  let e: number;
  if (a.k === K.Zero) {
    m = bneg ? -b.m : b.m;
    e = b.e;
  } else if (b.k === K.Zero) {
    m = a.neg ? -a.m : a.m;
    e = a.e;
  } else {
    e = Math.min(a.e, b.e);
    const ma = a.m << BigInt(a.e - e);
    const mb = b.m << BigInt(b.e - e);
    m = (a.neg ? -ma : ma) + (bneg ? -mb : mb);
  }
  if (m === 0n) return zero(rc === 1, f);
  return m < 0n ? roundPack(true, -m, e, f, mx) : roundPack(false, m, e, f, mx);
}

export function mul(abits: bigint, bbits: bigint, f: Fmt, mx: number): bigint {
  const a = unpack(abits, f, mx);
  const b = unpack(bbits, f, mx);
  if (isNaNK(a.k) || isNaNK(b.k)) return nanResult(a, b, f);
  const neg = a.neg !== b.neg;
  if (a.k === K.Inf || b.k === K.Inf) {
    if (a.k === K.Zero || b.k === K.Zero) return invalid(f);
    denormals(a, b);
    return infinity(neg, f);
  }
  denormals(a, b);
  if (a.k === K.Zero || b.k === K.Zero) return zero(neg, f);
  return roundPack(neg, a.m * b.m, a.e + b.e, f, mx);
}

export function div(abits: bigint, bbits: bigint, f: Fmt, mx: number): bigint {
  const a = unpack(abits, f, mx);
  const b = unpack(bbits, f, mx);
  if (isNaNK(a.k) || isNaNK(b.k)) return nanResult(a, b, f);
  const neg = a.neg !== b.neg;
  if (a.k === K.Inf && b.k === K.Inf) return invalid(f);
  if (a.k === K.Zero && b.k === K.Zero) return invalid(f);
  if (b.k === K.Zero) {
    if (a.k === K.Finite) SF.pre |= MX_ZE;
    return infinity(neg, f);
  }
  denormals(a, b);
  if (a.k === K.Inf) return infinity(neg, f);
  if (b.k === K.Inf || a.k === K.Zero) return zero(neg, f);
  // Quotient with at least p+2 bits, plus a sticky bit.
  const k = Math.max(0, f.p + 3 + bitLength(b.m) - bitLength(a.m));
  const num = a.m << BigInt(k);
  let q = num / b.m;
  const sticky = q * b.m !== num;
  q = (q << 1n) | (sticky ? 1n : 0n);
  return roundPack(neg, q, a.e - b.e - k - 1, f, mx);
}

export function isqrt(n: bigint): bigint {
  if (n < 2n) return n;
  // Newton's iteration from above converges to floor(sqrt(n)).
  let x = 1n << BigInt((bitLength(n) >> 1) + 1);
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) return x;
    x = y;
  }
}

export function sqrt(abits: bigint, f: Fmt, mx: number): bigint {
  const a = unpack(abits, f, mx);
  if (isNaNK(a.k)) return nanResult(a, null, f);
  if (a.k === K.Zero) return zero(a.neg, f);
  if (a.neg) return invalid(f);
  if (a.k === K.Inf) return f.inf;
  denormals(a, null);
  // value = m * 2^e with e even; scale m by 2^(2k) so the root has at least p+2 bits.
  let m = a.m;
  let e = a.e;
  if ((e & 1) !== 0) {
    m <<= 1n;
    e -= 1;
  }
  const k = Math.max(0, f.p + 3 - (bitLength(m) >> 1));
  const n = m << BigInt(2 * k);
  let r = isqrt(n);
  const sticky = r * r !== n;
  r = (r << 1n) | (sticky ? 1n : 0n);
  return roundPack(false, r, (e - 2 * k) / 2 - 1, f, mx);
}

/** minss/maxss rules: any NaN (IE even for QNaN) or both zero → the second operand, as is. */
export function minMax(abits: bigint, bbits: bigint, f: Fmt, mx: number, max: boolean): bigint {
  const a = unpack(abits, f, mx);
  const b = unpack(bbits, f, mx);
  if (isNaNK(a.k) || isNaNK(b.k)) {
    SF.pre |= MX_IE;
    // The second operand as read: a denormal flushed by DAZ comes back as zero.
    return b.k === K.Zero ? zero(b.neg, f) : bbits;
  }
  denormals(a, b);
  const c = compareValues(a, b, f);
  if (c === 0) return b.k === K.Zero && (mx & MX_DAZ) !== 0 ? zero(b.neg, f) : bbits;
  const pickA = max ? c > 0 : c < 0;
  const w = pickA ? a : b;
  // A denormal flushed by DAZ is returned as the zero it was read as.
  return w.k === K.Zero ? zero(w.neg, f) : w.bits;
}

/** -1, 0, 1 for ordered values (zeros equal regardless of sign). */
function compareValues(a: Unpacked, b: Unpacked, f: Fmt): number {
  const va = orderKey(a, f);
  const vb = orderKey(b, f);
  return va < vb ? -1 : va > vb ? 1 : 0;
}

/** Magnitude order equals bit-pattern order for non-NaN values; zeros (and DAZ-flushed denormals) are 0. */
function orderKey(u: Unpacked, f: Fmt): bigint {
  if (u.k === K.Zero) return 0n;
  const mag = u.bits & (f.signBit - 1n);
  return u.neg ? -mag : mag;
}

export const CMP_LT = 0;
export const CMP_EQ = 1;
export const CMP_GT = 2;
export const CMP_UN = 3;

/** Compares a with b; IE for SNaN, or any NaN when `signaling`; DE for denormals. */
export function compare(abits: bigint, bbits: bigint, f: Fmt, mx: number, signaling: boolean): number {
  const a = unpack(abits, f, mx);
  const b = unpack(bbits, f, mx);
  if (isNaNK(a.k) || isNaNK(b.k)) {
    if (signaling || a.k === K.SNaN || b.k === K.SNaN) SF.pre |= MX_IE;
    return CMP_UN;
  }
  denormals(a, b);
  const c = compareValues(a, b, f);
  return c < 0 ? CMP_LT : c > 0 ? CMP_GT : CMP_EQ;
}

/** Integer → float, rounded by MXCSR.RC. */
export function fromInt(v: bigint, f: Fmt, mx: number): bigint {
  if (v === 0n) return 0n;
  return v < 0n ? roundPack(true, -v, 0, f, mx) : roundPack(false, v, 0, f, mx);
}

/**
 * Float → signed integer of `width` bits, rounded by MXCSR.RC or truncated; null means the
 * "integer indefinite" (NaN, infinity or out of range: IE).
 */
export function toInt(abits: bigint, f: Fmt, mx: number, width: 32 | 64, truncate: boolean): bigint | null {
  const a = unpack(abits, f, mx);
  if (a.k !== K.Finite && a.k !== K.Zero) {
    SF.pre |= MX_IE;
    return null;
  }
  if (a.k === K.Zero) return 0n;
  const rc = truncate ? 3 : (mx >>> MX_RC_SHIFT) & 3;
  const q = roundShift(a.m, -a.e, a.neg, rc);
  const inx = inexact;
  const v = a.neg ? -q : q;
  const lim = 1n << BigInt(width - 1);
  if (v < -lim || v >= lim) {
    SF.pre |= MX_IE;
    return null;
  }
  if (inx) SF.post |= MX_PE;
  return v;
}

/** Float → float of another width (cvtss2sd, cvtsd2ss, cvtps2pd, cvtpd2ps). */
export function convert(abits: bigint, from: Fmt, to: Fmt, mx: number): bigint {
  const a = unpack(abits, from, mx);
  const sign = a.neg ? to.signBit : 0n;
  switch (a.k) {
    case K.SNaN:
    case K.QNaN: {
      if (a.k === K.SNaN) SF.pre |= MX_IE;
      const frac = abits & from.fracMask;
      const shift = from.fracBits - to.fracBits;
      const f2 = shift >= 0n ? frac >> shift : frac << -shift;
      return sign | to.inf | f2 | to.quietBit;
    }
    case K.Inf:
      return sign | to.inf;
    case K.Zero:
      return sign;
    default:
      denormals(a, null);
      return roundPack(a.neg, a.m, a.e, to, mx);
  }
}

// --- bit helpers for the callers

export function bits64(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

export function bits32(v: number): bigint {
  return BigInt(v >>> 0);
}

/** roundss/roundsd/roundps/roundpd: to an integral value by `rc`; PE unless `suppressPe`. */
export function roundToIntegral(abits: bigint, f: Fmt, mx: number, rc: number, suppressPe: boolean): bigint {
  const a = unpack(abits, f, mx);
  switch (a.k) {
    case K.SNaN:
      SF.pre |= MX_IE;
      return abits | f.quietBit;
    case K.QNaN:
    case K.Inf:
      return abits;
    case K.Zero:
      return zero(a.neg, f);
  }
  if (a.e >= 0) return abits; // already integral
  const q = roundShift(a.m, -a.e, a.neg, rc);
  if (inexact && !suppressPe) SF.post |= MX_PE;
  if (q === 0n) return zero(a.neg, f);
  return roundPack(a.neg, q, 0, f, mx & ~MX_FTZ);
}
