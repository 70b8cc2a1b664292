/**
 * Exact 80-bit extended-precision floating point, the x87 way: sign, 15-bit biased exponent
 * and a 64-bit significand with an explicit integer bit (bit 63). Significand arithmetic is
 * done on BigInt, exactly, and every result is rounded once, by `roundTo`, to the precision
 * and rounding control of the x87 control word. x87 use is rare (libc's long-double printf,
 * fenv code), so this favours being right over being fast; no operation does work that grows
 * with the operands' exponent difference (far-apart addends collapse into a sticky bit).
 *
 * Hardware rules modelled (Intel SDM vol. 1 ch. 4 and 8, checked against the host CPU under
 * KVM by test/unit/x87.test.ts):
 * - Precision control (PC: 24, 53 or 64 bits) applies to add, sub, mul, div and sqrt only;
 *   the exponent range stays the extended one, and a tiny result keeps the PC rounding
 *   position (quantum 2^(max(E, Emin) − (P − 1))).
 * - Tininess is detected after rounding; a masked underflow is flagged only when the tiny
 *   result is also inexact.
 * - C1 (`roundedUp`) is set when rounding increased the magnitude.
 * - NaNs: an SNaN operand raises IE and is quieted; of two NaNs the one with the larger
 *   significand wins (the positive one on a tie), a QNaN beats an SNaN; a NaN loaded from an
 *   f32/f64 keeps its payload in the top significand bits.
 * - Unsupported encodings (unnormals, pseudo-NaNs, pseudo-infinities: a nonzero exponent with
 *   the integer bit clear) are invalid operands: IE and the real indefinite. Pseudo-denormals
 *   (exponent 0, integer bit set) are denormal operands with the value of exponent 1.
 * - DE (denormal operand) comes from arithmetic, comparisons and f32/f64 loads, not from stores
 *   or integer conversions, and not when a NaN operand, an invalid operation or a division by
 *   zero decides the result.
 * - The invalid-operation result is the real indefinite (−QNaN 0xC000000000000000); integer
 *   conversions that fail produce the integer indefinite (the most negative integer).
 */

export interface F80 {
  /** 0 or 1 */
  readonly sign: number;
  /** Biased exponent, 0..0x7fff. */
  readonly exp: number;
  /** 64-bit significand, integer bit 63 explicit. */
  readonly sig: bigint;
}

export const BIAS = 16383;
export const EXP_INF = 0x7fff;
/** Unbiased exponents of the extended format's normal range. */
const EMIN = -16382;
const EMAX = 16383;
/** Exponent of a significand LSB for biased exponent 0 and 1 (denormals). */
const E_DENORMAL = 1 - BIAS - 63;

const INT_BIT = 1n << 63n;
const QUIET_BIT = 1n << 62n;
const M64 = (1n << 64n) - 1n;

export const RC_NEAREST = 0;
export const RC_DOWN = 1;
export const RC_UP = 2;
export const RC_ZERO = 3;

/** Exception flags, in their FSW (and FCW mask) bit positions. */
export const X_IE = 0x01;
export const X_DE = 0x02;
export const X_ZE = 0x04;
export const X_OE = 0x08;
export const X_UE = 0x10;
export const X_PE = 0x20;

export const F80_INDEFINITE: F80 = { sign: 1, exp: EXP_INF, sig: 0xc000000000000000n };
export const F80_ZERO: F80 = { sign: 0, exp: 0, sig: 0n };
export const F80_ONE: F80 = { sign: 0, exp: BIAS, sig: INT_BIT };

/**
 * The rounding environment of one operation and what it raised. `flags` accumulates the
 * exception flags (X_*), `roundedUp` tells whether the last rounding increased the
 * magnitude (C1). An unmasked overflow or underflow sets `unmaskedOU`: a register result is
 * then the bias-adjusted one the x87 delivers (exponent ∓ 24576), a memory store must not
 * happen.
 */
export class FpEnv {
  rc = RC_NEAREST;
  /** Significand bits for add/sub/mul/div/sqrt (precision control). */
  pc = 64;
  /** FCW exception masks (bits 0–5). */
  masks = 0x3f;
  flags = 0;
  roundedUp = false;
  unmaskedOU = false;
  /**
   * A memory operand of the operation was an f32/f64 denormal (normal once extended): DE is
   * raised with the operation's own denormal check, which a NaN operand pre-empts.
   */
  denormalOperand = false;

  /** Resets the status and takes RC, PC and masks from an x87 control word. */
  reset(fcw: number): this {
    this.rc = (fcw >> 10) & 3;
    const pc = (fcw >> 8) & 3;
    // 00 = 24 bits, 10 = 53, 11 = 64; the reserved 01 behaves as 64 on the hardware we measured.
    this.pc = pc === 0 ? 24 : pc === 2 ? 53 : 64;
    this.masks = fcw & 0x3f;
    this.flags = 0;
    this.roundedUp = false;
    this.unmaskedOU = false;
    this.denormalOperand = false;
    return this;
  }
}

// --- encoding

export function f80(sign: number, exp: number, sig: bigint): F80 {
  return { sign, exp, sig };
}

export function readF80(b: Uint8Array, off: number): F80 {
  let sig = 0n;
  // Two 32-bit halves keep this to two BigInt conversions.
  const lo = (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) >>> 0;
  const hi = (b[off + 4]! | (b[off + 5]! << 8) | (b[off + 6]! << 16) | (b[off + 7]! << 24)) >>> 0;
  sig = (BigInt(hi) << 32n) | BigInt(lo);
  const se = b[off + 8]! | (b[off + 9]! << 8);
  return { sign: se >> 15, exp: se & 0x7fff, sig };
}

export function writeF80(v: F80, b: Uint8Array, off: number): void {
  const lo = Number(v.sig & 0xffffffffn);
  const hi = Number((v.sig >> 32n) & 0xffffffffn);
  b[off] = lo & 0xff;
  b[off + 1] = (lo >>> 8) & 0xff;
  b[off + 2] = (lo >>> 16) & 0xff;
  b[off + 3] = lo >>> 24;
  b[off + 4] = hi & 0xff;
  b[off + 5] = (hi >>> 8) & 0xff;
  b[off + 6] = (hi >>> 16) & 0xff;
  b[off + 7] = hi >>> 24;
  const se = (v.sign << 15) | v.exp;
  b[off + 8] = se & 0xff;
  b[off + 9] = se >> 8;
}

/** The 80-bit pattern as one BigInt (sign/exponent in bits 64–79), for tests and messages. */
export function f80Bits(v: F80): bigint {
  return (BigInt((v.sign << 15) | v.exp) << 64n) | v.sig;
}

export function f80FromBits(bits: bigint): F80 {
  const se = Number((bits >> 64n) & 0xffffn);
  return { sign: se >> 15, exp: se & 0x7fff, sig: bits & M64 };
}

// --- classification

export function isNaN80(a: F80): boolean {
  return a.exp === EXP_INF && (a.sig & INT_BIT) !== 0n && (a.sig & ~INT_BIT) !== 0n;
}
export function isSNaN80(a: F80): boolean {
  return isNaN80(a) && (a.sig & QUIET_BIT) === 0n;
}
export function isInf80(a: F80): boolean {
  return a.exp === EXP_INF && a.sig === INT_BIT;
}
export function isZero80(a: F80): boolean {
  return a.exp === 0 && a.sig === 0n;
}
/** Denormal or pseudo-denormal (exponent 0, nonzero significand). */
export function isDenormal80(a: F80): boolean {
  return a.exp === 0 && a.sig !== 0n;
}
/** Unnormal, pseudo-NaN or pseudo-infinity: invalid as an operand since the 80387. */
export function isUnsupported80(a: F80): boolean {
  return a.exp !== 0 && (a.sig & INT_BIT) === 0n;
}

export function quiet(a: F80): F80 {
  return { sign: a.sign, exp: a.exp, sig: a.sig | QUIET_BIT };
}

export function neg80(a: F80): F80 {
  return { sign: a.sign ^ 1, exp: a.exp, sig: a.sig };
}

export function abs80(a: F80): F80 {
  return { sign: 0, exp: a.exp, sig: a.sig };
}

/** x87 FXAM class in C3,C2,C0 (as bits 2,1,0): 0 unsupported, 1 NaN, 2 normal, 3 infinity, 4 zero, 6 denormal. */
export function fxamClass(a: F80): number {
  if (a.exp === EXP_INF) {
    if ((a.sig & INT_BIT) === 0n) return 0;
    return a.sig === INT_BIT ? 3 : 1;
  }
  if (a.exp === 0) return a.sig === 0n ? 4 : 6;
  return (a.sig & INT_BIT) === 0n ? 0 : 2;
}

// --- exact values: ±m·2^e

/** Bit length of a positive BigInt. */
export function bitLength(m: bigint): number {
  if (m < 0x20000000000000n) {
    const n = Number(m);
    if (n < 4294967296) return 32 - Math.clz32(n);
    return 64 - Math.clz32(Math.floor(n / 4294967296));
  }
  const h = m.toString(16);
  return (h.length - 1) * 4 + (32 - Math.clz32(parseInt(h[0]!, 16)));
}

/** The exponent of the significand's LSB of a finite, supported value. */
function lsbExp(a: F80): number {
  return a.exp === 0 ? E_DENORMAL : a.exp - BIAS - 63;
}

/** Whether rounding m (with `rem` of `sh` dropped bits below it) goes up in magnitude. */
function roundsUp(sign: number, lsbOdd: boolean, rem: bigint, sh: bigint, rc: number): boolean {
  if (rem === 0n) return false;
  switch (rc) {
    case RC_NEAREST: {
      const half = 1n << (sh - 1n);
      return rem > half || (rem === half && lsbOdd);
    }
    case RC_DOWN:
      return sign === 1;
    case RC_UP:
      return sign === 0;
    default:
      return false;
  }
}

/** A target format: significand precision and normal exponent range. */
interface Format {
  p: number;
  emin: number;
  emax: number;
}

const FMT_F32: Format = { p: 24, emin: -126, emax: 127 };
const FMT_F64: Format = { p: 53, emin: -1022, emax: 1023 };
const FMT80 = [null, null, null] as (Format | null)[];
function fmt80(p: number): Format {
  const i = p === 24 ? 0 : p === 53 ? 1 : 2;
  return (FMT80[i] ??= { p, emin: EMIN, emax: EMAX });
}

/**
 * Rounded ±m·2^e: `sig`·2^`q` with sig < 2^p (0 when it rounded to zero), or `inf` when it
 * overflowed to infinity; overflow to the largest finite value comes back as a finite result.
 * m > 0. Sets PE/UE/OE and roundedUp in `env`.
 */
interface Rounded {
  sig: bigint;
  q: number;
  inf: boolean;
}

function roundTo(sign: number, m: bigint, e: number, f: Format, env: FpEnv): Rounded {
  const { p, emin, emax } = f;
  const rc = env.rc;
  const len = bitLength(m);
  const E = e + len - 1;
  let q = Math.max(E, emin) - (p - 1);
  let sig: bigint;
  let inexact = false;
  let up = false;
  if (q > e) {
    const sh = BigInt(q - e);
    sig = m >> sh;
    const rem = m - (sig << sh);
    if (rem !== 0n) {
      inexact = true;
      up = roundsUp(sign, (sig & 1n) === 1n, rem, sh, rc);
      if (up) {
        sig += 1n;
        if (sig >> BigInt(p) !== 0n) {
          sig >>= 1n;
          q += 1;
        }
      }
    }
  } else {
    sig = m << BigInt(e - q);
  }
  const Er = sig === 0n ? -Infinity : q + bitLength(sig) - 1;
  if (Er > emax) {
    if ((env.masks & X_OE) === 0) {
      // Unmasked: only OE; the caller decides what is stored.
      env.flags |= X_OE;
      env.unmaskedOU = true;
      env.roundedUp = false;
      return { sig, q, inf: false };
    }
    // Overflow: infinity or the largest finite value, by rounding direction.
    env.flags |= X_OE | X_PE;
    const toInf = rc === RC_NEAREST || (rc === RC_UP && sign === 0) || (rc === RC_DOWN && sign === 1);
    env.roundedUp = toInf;
    if (toInf) return { sig: 0n, q: 0, inf: true };
    return { sig: (1n << BigInt(p)) - 1n, q: emax - (p - 1), inf: false };
  }
  if (E < emin) {
    // Tiny after rounding: the result rounded to p bits with an unbounded exponent is below 2^emin.
    let tiny = true;
    if (E === emin - 1) {
      const sh = BigInt(E - (p - 1) - e);
      if (sh > 0n) {
        const s = m >> sh;
        const rem = m - (s << sh);
        if (roundsUp(sign, (s & 1n) === 1n, rem, sh, rc) && (s + 1n) >> BigInt(p) !== 0n) tiny = false;
      }
    }
    if (tiny) {
      if ((env.masks & X_UE) === 0) {
        env.flags |= X_UE;
        env.unmaskedOU = true;
        env.roundedUp = false;
        return { sig, q, inf: false };
      }
      if (inexact) env.flags |= X_UE;
    }
  }
  if (inexact) env.flags |= X_PE;
  env.roundedUp = up;
  return { sig, q, inf: false };
}

function pack80(sign: number, r: Rounded): F80 {
  if (r.inf) return { sign, exp: EXP_INF, sig: INT_BIT };
  if (r.sig === 0n) return { sign, exp: 0, sig: 0n };
  const len = bitLength(r.sig);
  const Er = r.q + len - 1;
  if (Er >= EMIN) return { sign, exp: Er + BIAS, sig: r.sig << BigInt(64 - len) };
  return { sign, exp: 0, sig: r.sig << BigInt(r.q - E_DENORMAL) };
}

/** The x87's exponent bias adjustment for unmasked overflow and underflow results. */
const BIAS_ADJUST = 24576;
const FMT_WIDE = [24, 53, 64].map((p) => ({ p, emin: -1e9, emax: 1e9 }));

/**
 * ±m·2^e rounded to the extended format at `p` bits. With an unmasked overflow/underflow the
 * result is rounded with an unbounded exponent and then brought into range by ∓24576 (what the
 * x87 stores in a register for the exception handler).
 */
function round80(sign: number, m: bigint, e: number, p: number, env: FpEnv): F80 {
  if (m === 0n) return { sign, exp: 0, sig: 0n };
  const r = roundTo(sign, m, e, fmt80(p), env);
  if (!env.unmaskedOU) return pack80(sign, r);
  const w = roundTo(sign, m, e, FMT_WIDE[p === 24 ? 0 : p === 53 ? 1 : 2]!, env);
  const len = bitLength(w.sig);
  const Er = w.q + len - 1;
  const exp = Er + BIAS + (Er > 0 ? -BIAS_ADJUST : BIAS_ADJUST);
  if (exp >= 1 && exp < EXP_INF) return { sign, exp, sig: w.sig << BigInt(64 - len) };
  // Out of range even then (fscale by a huge power): ±∞ (C1 set) or ±0, whatever the rounding
  // control, and inexact (measured).
  env.flags |= X_PE;
  env.roundedUp = Er > 0;
  return Er > 0 ? { sign, exp: EXP_INF, sig: INT_BIT } : { sign, exp: 0, sig: 0n };
}

/** A normalized finite value exactly (m has its top bit at 63 unless it is zero). */
function normalize(a: F80): { m: bigint; e: number } {
  let m = a.sig;
  let e = lsbExp(a);
  if (m === 0n) return { m, e };
  const sh = 64 - bitLength(m);
  if (sh > 0) {
    m <<= BigInt(sh);
    e -= sh;
  }
  return { m, e };
}

// --- NaN rules

/** Result of an operation with a NaN operand (either may be absent when not a NaN). */
export function propagateNaN(a: F80, b: F80 | null, env: FpEnv): F80 {
  const aNaN = isNaN80(a);
  const bNaN = b !== null && isNaN80(b);
  const aS = aNaN && (a.sig & QUIET_BIT) === 0n;
  const bS = bNaN && (b.sig & QUIET_BIT) === 0n;
  if (aS || bS) env.flags |= X_IE;
  if (!bNaN) return quiet(a);
  if (!aNaN) return quiet(b!);
  // Both NaNs: a QNaN beats an SNaN; else the larger significand, then the positive sign.
  if (aS !== bS) return aS ? quiet(b!) : quiet(a);
  const qa = a.sig | QUIET_BIT;
  const qb = b!.sig | QUIET_BIT;
  if (qa !== qb) return qa > qb ? quiet(a) : quiet(b!);
  return a.sign <= b!.sign ? quiet(a) : quiet(b!);
}

/**
 * The common pre-checks of an operation: unsupported encodings (invalid), NaNs (propagated),
 * denormal operands (DE, withdrawn again if the operation turns out invalid or a division by
 * zero). Returns the result when one of the first two decides it.
 */
function specials(a: F80, b: F80 | null, env: FpEnv): F80 | null {
  if (isUnsupported80(a) || (b !== null && isUnsupported80(b))) {
    env.flags |= X_IE;
    return F80_INDEFINITE;
  }
  if (isNaN80(a) || (b !== null && isNaN80(b))) return propagateNaN(a, b, env);
  if (isDenormal80(a) || (b !== null && isDenormal80(b)) || env.denormalOperand) env.flags |= X_DE;
  return null;
}

/** The invalid-operation result; an invalid operation raises no DE for its denormal operands. */
function invalid(env: FpEnv): F80 {
  env.flags = (env.flags & ~X_DE) | X_IE;
  return F80_INDEFINITE;
}

// --- arithmetic

/** a + b (or a − b), rounded to PC/RC. */
export function add80(a: F80, b: F80, env: FpEnv, subtract = false): F80 {
  const sp = specials(a, b, env);
  if (sp) return sp;
  const bs = b.sign ^ (subtract ? 1 : 0);
  const aInf = a.exp === EXP_INF;
  const bInf = b.exp === EXP_INF;
  if (aInf || bInf) {
    if (aInf && bInf && a.sign !== bs) return invalid(env);
    return aInf ? a : { sign: bs, exp: EXP_INF, sig: INT_BIT };
  }
  let ma = a.sig;
  let mb = b.sig;
  let ea = lsbExp(a);
  let eb = lsbExp(b);
  if (ma === 0n && mb === 0n) {
    // Exact zero sum: +0 unless both are −0 (or rounding down mixes signs).
    const sign = a.sign === bs ? a.sign : env.rc === RC_DOWN ? 1 : 0;
    return { sign, exp: 0, sig: 0n };
  }
  // Far-apart operands: the small one only matters as a sticky bit below the rounding point.
  if (ma !== 0n && mb !== 0n) {
    if (ea - eb > 140) {
      mb = 1n;
      eb = ea - 100;
    } else if (eb - ea > 140) {
      ma = 1n;
      ea = eb - 100;
    }
  }
  const e = Math.min(ea, eb);
  const va = (a.sign ? -ma : ma) << BigInt(ea - e);
  const vb = (bs ? -mb : mb) << BigInt(eb - e);
  const sum = va + vb;
  if (sum === 0n) return { sign: env.rc === RC_DOWN ? 1 : 0, exp: 0, sig: 0n };
  const sign = sum < 0n ? 1 : 0;
  return round80(sign, sign ? -sum : sum, e, env.pc, env);
}

export function sub80(a: F80, b: F80, env: FpEnv): F80 {
  return add80(a, b, env, true);
}

export function mul80(a: F80, b: F80, env: FpEnv): F80 {
  const sp = specials(a, b, env);
  if (sp) return sp;
  const sign = a.sign ^ b.sign;
  const aInf = a.exp === EXP_INF;
  const bInf = b.exp === EXP_INF;
  if (aInf || bInf) {
    if (isZero80(a) || isZero80(b)) return invalid(env);
    return { sign, exp: EXP_INF, sig: INT_BIT };
  }
  if (a.sig === 0n || b.sig === 0n) return { sign, exp: 0, sig: 0n };
  return round80(sign, a.sig * b.sig, lsbExp(a) + lsbExp(b), env.pc, env);
}

export function div80(a: F80, b: F80, env: FpEnv): F80 {
  const sp = specials(a, b, env);
  if (sp) return sp;
  const sign = a.sign ^ b.sign;
  const aInf = a.exp === EXP_INF;
  const bInf = b.exp === EXP_INF;
  if (aInf) return bInf ? invalid(env) : { sign, exp: EXP_INF, sig: INT_BIT };
  if (bInf) return { sign, exp: 0, sig: 0n };
  if (b.sig === 0n) {
    if (a.sig === 0n) return invalid(env);
    env.flags = (env.flags & ~X_DE) | X_ZE; // as for invalid: no DE
    return { sign, exp: EXP_INF, sig: INT_BIT };
  }
  if (a.sig === 0n) return { sign, exp: 0, sig: 0n };
  const na = normalize(a);
  const nb = normalize(b);
  // 66 or 67 quotient bits, then a sticky bit for the remainder.
  const num = na.m << 66n;
  const q = num / nb.m;
  const r = num - q * nb.m;
  const m = (q << 1n) | (r !== 0n ? 1n : 0n);
  return round80(sign, m, na.e - nb.e - 67, env.pc, env);
}

/** Integer square root (floor) of n ≥ 0. */
function isqrt(n: bigint): bigint {
  if (n < 2n) return n;
  let x = 1n << BigInt((bitLength(n) >> 1) + 1);
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) return x;
    x = y;
  }
}

export function sqrt80(a: F80, env: FpEnv): F80 {
  const sp = specials(a, null, env);
  if (sp) return sp;
  if (a.sig === 0n && a.exp === 0) return a; // ±0
  if (a.sign) return invalid(env);
  if (a.exp === EXP_INF) return a;
  let { m, e } = normalize(a);
  // m·2^e with e even and m ≥ 2^134 gives a root of at least 67 bits.
  const sh = 72 - (e & 1);
  m <<= BigInt(sh);
  e -= sh;
  const s = isqrt(m);
  const r = m - s * s;
  return round80(0, (s << 1n) | (r !== 0n ? 1n : 0n), e / 2 - 1, env.pc, env);
}

/** Scales a finite value m·2^e into an F80 rounded at 64 bits (loads, fscale). */
export function fromParts(sign: number, m: bigint, e: number, env: FpEnv): F80 {
  return round80(sign, m, e, 64, env);
}

// --- comparisons

export const CMP_LT = 0;
export const CMP_EQ = 1;
export const CMP_GT = 2;
export const CMP_UN = 3;

/**
 * Compares a with b. `signaling`: a QNaN operand raises IE too (fcom, fcomi, ftst); otherwise
 * only an SNaN does (fucom, fucomi). Unsupported encodings always raise IE.
 */
export function compare80(a: F80, b: F80, env: FpEnv, signaling: boolean): number {
  if (isUnsupported80(a) || isUnsupported80(b)) {
    env.flags |= X_IE;
    return CMP_UN;
  }
  if (isNaN80(a) || isNaN80(b)) {
    if (signaling || isSNaN80(a) || isSNaN80(b)) env.flags |= X_IE;
    return CMP_UN;
  }
  if (isDenormal80(a) || isDenormal80(b) || env.denormalOperand) env.flags |= X_DE;
  const az = a.sig === 0n && a.exp === 0;
  const bz = b.sig === 0n && b.exp === 0;
  if (az && bz) return CMP_EQ;
  if (az) return b.sign ? CMP_GT : CMP_LT;
  if (bz) return a.sign ? CMP_LT : CMP_GT;
  if (a.sign !== b.sign) return a.sign ? CMP_LT : CMP_GT;
  const mag = compareMagnitude(a, b);
  if (mag === 0) return CMP_EQ;
  return (mag > 0) !== (a.sign === 1) ? CMP_GT : CMP_LT;
}

/** |a| vs |b| for nonzero non-NaN values (infinities included): −1, 0, 1. */
function compareMagnitude(a: F80, b: F80): number {
  const ai = a.exp === EXP_INF;
  const bi = b.exp === EXP_INF;
  if (ai || bi) return ai && bi ? 0 : ai ? 1 : -1;
  const na = normalize(a);
  const nb = normalize(b);
  if (na.e !== nb.e) return na.e > nb.e ? 1 : -1;
  return na.m === nb.m ? 0 : na.m > nb.m ? 1 : -1;
}

// --- conversions: f32 / f64

function fromBinary(sign: number, be: number, frac: bigint, fracBits: number, bias: number, env: FpEnv, raw: boolean): F80 {
  const maxBe = bias * 2 + 1;
  if (be === maxBe) {
    if (frac === 0n) return { sign, exp: EXP_INF, sig: INT_BIT };
    const sig = INT_BIT | (frac << BigInt(63 - fracBits));
    if (raw) return { sign, exp: EXP_INF, sig };
    if ((sig & QUIET_BIT) === 0n) env.flags |= X_IE;
    return { sign, exp: EXP_INF, sig: sig | QUIET_BIT };
  }
  if (be === 0) {
    if (frac === 0n) return { sign, exp: 0, sig: 0n };
    if (raw) env.denormalOperand = true;
    else env.flags |= X_DE;
    return round80(sign, frac, 1 - bias - fracBits, 64, env);
  }
  return { sign, exp: be - bias + BIAS, sig: INT_BIT | (frac << BigInt(63 - fracBits)) };
}

/**
 * An f32 bit pattern loaded onto the x87 stack (fld m32): exact; SNaN → IE + quiet; denormal →
 * DE. `raw` (a memory operand of an arithmetic instruction): an SNaN stays signaling, for the
 * operation to deal with.
 */
export function fromF32(bits: number, env: FpEnv, raw = false): F80 {
  return fromBinary(bits >>> 31, (bits >>> 23) & 0xff, BigInt(bits & 0x7fffff), 23, 127, env, raw);
}

/** An f64 bit pattern loaded onto the x87 stack (fld m64); `raw` as for fromF32. */
export function fromF64(bits: bigint, env: FpEnv, raw = false): F80 {
  return fromBinary(Number(bits >> 63n) & 1, Number((bits >> 52n) & 0x7ffn), bits & ((1n << 52n) - 1n), 52, 1023, env, raw);
}

function toBinary(a: F80, f: Format, fracBits: number, bias: number, env: FpEnv): bigint {
  const expBits = fracBits === 23 ? 8 : 11;
  const maxBe = BigInt(bias * 2 + 1);
  const signBit = BigInt(a.sign) << BigInt(fracBits + expBits);
  const indefinite = (1n << BigInt(fracBits + expBits)) | (maxBe << BigInt(fracBits)) | (1n << BigInt(fracBits - 1));
  if (isUnsupported80(a)) {
    env.flags |= X_IE;
    return indefinite;
  }
  if (a.exp === EXP_INF) {
    if (a.sig === INT_BIT) return signBit | (maxBe << BigInt(fracBits));
    if ((a.sig & QUIET_BIT) === 0n) env.flags |= X_IE;
    const frac = ((a.sig | QUIET_BIT) >> BigInt(63 - fracBits)) & ((1n << BigInt(fracBits)) - 1n);
    return signBit | (maxBe << BigInt(fracBits)) | frac;
  }
  if (a.sig === 0n) return signBit;
  const r = roundTo(a.sign, a.sig, lsbExp(a), f, env);
  if (r.inf) return signBit | (maxBe << BigInt(fracBits));
  if (r.sig === 0n) return signBit;
  const len = bitLength(r.sig);
  const Er = r.q + len - 1;
  if (Er >= f.emin) {
    const frac = (r.sig << BigInt(f.p - len)) & ((1n << BigInt(fracBits)) - 1n);
    return signBit | (BigInt(Er + bias) << BigInt(fracBits)) | frac;
  }
  return signBit | (r.sig << BigInt(r.q - (f.emin - fracBits)));
}

/** fst m32: rounded by RC to single precision; NaN payloads truncated (and quieted). */
export function toF32(a: F80, env: FpEnv): number {
  return Number(toBinary(a, FMT_F32, 23, 127, env));
}

/** fst m64. */
export function toF64(a: F80, env: FpEnv): bigint {
  return toBinary(a, FMT_F64, 52, 1023, env);
}

// --- conversions: integers

/** An integer (fild), exact. */
export function fromInt(v: bigint): F80 {
  if (v === 0n) return F80_ZERO;
  const sign = v < 0n ? 1 : 0;
  const m = sign ? -v : v;
  const len = bitLength(m);
  return { sign, exp: BIAS + len - 1, sig: m << BigInt(64 - len) };
}

/**
 * The integer value of a finite value, rounded by `rc` (magnitude and whether it rounded up);
 * null when it is ≥ 2^limitBits in magnitude (no need to build huge integers).
 */
function integerPart(a: F80, rc: number, limitBits: number): { k: bigint; inexact: boolean; up: boolean } | null {
  const { m, e } = normalize(a);
  if (m === 0n) return { k: 0n, inexact: false, up: false };
  if (e >= 0) {
    if (e + 64 > limitBits) return null;
    return { k: m << BigInt(e), inexact: false, up: false };
  }
  if (e < -66) {
    // |a| < 2^-2: 0 or 1 by rounding direction (nearest gives 0).
    const up = rc === RC_UP ? a.sign === 0 : rc === RC_DOWN ? a.sign === 1 : false;
    return { k: up ? 1n : 0n, inexact: true, up };
  }
  const sh = BigInt(-e);
  let k = m >> sh;
  const rem = m - (k << sh);
  const up = roundsUp(a.sign, (k & 1n) === 1n, rem, sh, rc);
  if (up) k += 1n;
  return { k, inexact: rem !== 0n, up };
}

/**
 * fist/fistp (rounding by RC) and fisttp (`truncate`): the signed integer, or null for the
 * integer indefinite (NaN, infinity, out of range: IE).
 */
export function toInt(a: F80, bits: number, env: FpEnv, truncate = false): bigint | null {
  if (isUnsupported80(a) || a.exp === EXP_INF) {
    env.flags |= X_IE;
    return null;
  }
  const r = integerPart(a, truncate ? RC_ZERO : env.rc, bits + 1);
  const lim = 1n << BigInt(bits - 1);
  if (r === null || (a.sign ? r.k > lim : r.k >= lim)) {
    env.flags |= X_IE;
    return null;
  }
  if (r.inexact) env.flags |= X_PE;
  env.roundedUp = r.up;
  return a.sign ? -r.k : r.k;
}

/** frndint: round to an integral value by RC (the result keeps the operand's sign). */
export function roundInt80(a: F80, env: FpEnv): F80 {
  const sp = specials(a, null, env);
  if (sp) return sp;
  if (a.exp === EXP_INF || a.sig === 0n) return a;
  if (a.exp >= BIAS + 63) return a;
  const r = integerPart(a, env.rc, 128)!;
  if (r.inexact) env.flags |= X_PE;
  env.roundedUp = r.up;
  if (r.k === 0n) return { sign: a.sign, exp: 0, sig: 0n };
  const v = fromInt(r.k);
  return { sign: a.sign, exp: v.exp, sig: v.sig };
}

// --- fscale, fprem, fxtract

/** fscale: a·2^trunc(b). */
export function scale80(a: F80, b: F80, env: FpEnv): F80 {
  const sp = specials(a, b, env);
  if (sp) return sp;
  const aInf = a.exp === EXP_INF;
  const aZero = a.sig === 0n;
  if (b.exp === EXP_INF) {
    if (b.sign === 0) {
      if (aZero) return invalid(env);
      return { sign: a.sign, exp: EXP_INF, sig: INT_BIT };
    }
    if (aInf) return invalid(env);
    return { sign: a.sign, exp: 0, sig: 0n };
  }
  if (aInf || aZero) return a;
  // trunc(b), clamped: anything beyond ±2^17 over- or underflows every finite a anyway.
  let n: number;
  const nb = normalize(b);
  if (nb.m === 0n) n = 0;
  else if (nb.e + 63 >= 18) n = 1 << 18;
  else if (nb.e >= 0) n = Number(nb.m << BigInt(nb.e));
  else if (nb.e < -63) n = 0;
  else n = Number(nb.m >> BigInt(-nb.e));
  if (b.sign) n = -n;
  return round80(a.sign, a.sig, lsbExp(a) + n, 64, env);
}

export interface PremResult {
  value: F80;
  /** The low three quotient bits (C0 = Q2, C3 = Q1, C1 = Q0); −1 when the result is a NaN (no quotient). */
  q: number;
  /** C2: the reduction is incomplete (run fprem again). */
  partial: boolean;
}

/**
 * fprem (truncating quotient) and fprem1 (IEEE remainder: nearest quotient, ties to even).
 * Exponent differences of 64 or more reduce partially, by 2^(D − N) with N = 32 + D mod 32.
 */
export function prem80(a: F80, b: F80, env: FpEnv, ieee: boolean): PremResult {
  const sp = specials(a, b, env);
  if (sp) return { value: sp, q: -1, partial: false };
  if (a.exp === EXP_INF || (b.sig === 0n && b.exp === 0)) return { value: invalid(env), q: -1, partial: false };
  if (b.exp === EXP_INF || (a.sig === 0n && a.exp === 0)) return { value: a, q: 0, partial: false };
  const na = normalize(a);
  const nb = normalize(b);
  const d = na.e - nb.e;
  let shift = 0;
  let partial = false;
  if (d >= 64) {
    shift = d - (32 + (d % 32));
    partial = true;
  }
  // a = A·2^e0, b·2^shift = B·2^e0
  const eb = nb.e + shift;
  const e0 = Math.min(na.e, eb);
  const A = na.m << BigInt(na.e - e0);
  const B = nb.m << BigInt(eb - e0);
  let Q = A / B;
  let R = A - Q * B;
  if (ieee && !partial) {
    const twice = R << 1n;
    if (twice > B || (twice === B && (Q & 1n) === 1n)) {
      Q += 1n;
      R = B - R;
      // The remainder changes sign.
      const v = R === 0n ? { sign: a.sign, exp: 0, sig: 0n } : fromParts(a.sign ^ 1, R, e0, env);
      return { value: v, q: Number(Q & 7n), partial };
    }
  }
  const v = R === 0n ? { sign: a.sign, exp: 0, sig: 0n } : fromParts(a.sign, R, e0, env);
  return { value: v, q: Number(Q & 7n), partial };
}

/** fxtract: [exponent, significand] of a (the significand gets exponent 0, a's sign). */
export function xtract80(a: F80, env: FpEnv): [F80, F80] {
  const sp = specials(a, null, env);
  if (sp) return [sp, sp];
  if (a.exp === EXP_INF) return [{ sign: 0, exp: EXP_INF, sig: INT_BIT }, a];
  if (a.sig === 0n) {
    env.flags |= X_ZE;
    return [{ sign: 1, exp: EXP_INF, sig: INT_BIT }, a];
  }
  const { m, e } = normalize(a);
  const ex = fromInt(BigInt(e + 63));
  return [ex, { sign: a.sign, exp: BIAS, sig: m }];
}

// --- constants (fld1, fldz, fldpi…): 128-bit values rounded by RC, no exception flags

const CONSTANTS: Record<string, [number, bigint]> = {
  pi: [0x4000, 0xc90fdaa22168c234c4c6628b80dc1cd1n],
  l2e: [0x3fff, 0xb8aa3b295c17f0bbbe87fed0691d3e89n],
  l2t: [0x4000, 0xd49a784bcd1b8afe492bf6ff4dafdb4dn],
  lg2: [0x3ffd, 0x9a209a84fbcff7988f8959ac0b7c9178n],
  ln2: [0x3ffe, 0xb17217f7d1cf79abc9e3b39803f2f6afn],
};

export function constant80(name: 'pi' | 'l2e' | 'l2t' | 'lg2' | 'ln2', rc: number): F80 {
  const [exp, wide] = CONSTANTS[name]!;
  let sig = wide >> 64n;
  const rem = wide & M64;
  if (roundsUp(0, (sig & 1n) === 1n, rem, 64n, rc)) sig += 1n;
  return { sign: 0, exp, sig };
}

/** A JS number as an F80 (exact), for tests and diagnostics. */
export function fromNumber(x: number): F80 {
  const dv = new DataView(new ArrayBuffer(8));
  dv.setFloat64(0, x);
  return fromF64(dv.getBigUint64(0), new FpEnv());
}

/** An F80 rounded to the nearest double, for tests and diagnostics. */
export function toNumber(a: F80): number {
  const dv = new DataView(new ArrayBuffer(8));
  dv.setBigUint64(0, toF64(a, new FpEnv()));
  return dv.getFloat64(0);
}
