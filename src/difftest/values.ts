/**
 * Random values for registers, immediates, XMM lanes and the scratch page: uniform bits mixed
 * with the boundary values where implementations go wrong (carries, sign changes, integer
 * conversion limits, NaNs, infinities, denormals, signed zeros).
 */
import type { Rng } from './rng.js';

const MASK64 = (1n << 64n) - 1n;

export const INTERESTING_U64: readonly bigint[] = [
  0n, 1n, 2n, 3n, 7n, 8n, 0x7fn, 0x80n, 0xffn, 0x100n, 0x7fffn, 0x8000n, 0xffffn, 0x10000n,
  0x7fffffffn, 0x80000000n, 0xffffffffn, 0x100000000n, 0x7fffffffffffffffn, 0x8000000000000000n,
  0xffffffffffffffffn, 0xfffffffffffffffen, 0x8000000000000001n, 0xffffffff80000000n, 0xffffffff7fffffffn,
  0xffffffffffff8000n, 0xffffffffffffff80n, 0x0123456789abcdefn, 0xaaaaaaaaaaaaaaaan, 0x5555555555555555n,
];

/** A 64-bit register value. */
export function randomU64(rng: Rng): bigint {
  const r = rng.below(100);
  if (r < 40) return rng.u64();
  if (r < 60) return rng.pick(INTERESTING_U64);
  if (r < 75) {
    const v = BigInt(rng.below(65));
    return rng.chance(0.3) ? (-v) & MASK64 : v;
  }
  if (r < 85) return BigInt(rng.u32());
  if (r < 95) return BigInt.asUintN(64, BigInt(rng.u32() | 0));
  return (rng.pick(INTERESTING_U64) + BigInt(rng.range(-2, 2))) & MASK64;
}

/** An immediate of `bits` bits as a signed JS number (what iced's create*I32 takes). */
export function randomImmSigned(rng: Rng, bits: 8 | 16 | 32): number {
  const r = rng.below(10);
  let v: number;
  if (r < 5) v = rng.u32();
  else if (r < 8) v = rng.range(-4, 16);
  else v = rng.pick([0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff, 1, 0]);
  const shift = 32 - bits;
  return shift === 0 ? v | 0 : (v << shift) >> shift;
}

/** An unsigned immediate of `bits` bits. */
export function randomImmUnsigned(rng: Rng, bits: 8 | 16): number {
  const mask = bits === 8 ? 0xff : 0xffff;
  const r = rng.below(10);
  if (r < 6) return rng.u32() & mask;
  if (r < 9) return rng.below(Math.min(mask + 1, 70));
  return rng.pick([0x7f, 0x80, 0xff, mask, 1, 0]) & mask;
}

const F64_SPECIAL: readonly bigint[] = [
  0x0000000000000000n, 0x8000000000000000n, // ±0
  0x3ff0000000000000n, 0xbff0000000000000n, // ±1
  0x3fe0000000000000n, 0x3ff8000000000000n, 0x4004000000000000n, 0xc004000000000000n, // 0.5 1.5 2.5 -2.5
  0x7ff0000000000000n, 0xfff0000000000000n, // ±inf
  0x7ff8000000000000n, 0xfff8000000000000n, 0x7ff4000000000001n, 0x7ff0000000000001n, 0xfff0000000abcdefn, // NaNs (q, -q, payload, s, -s)
  0x0000000000000001n, 0x000fffffffffffffn, 0x8000000000000001n, 0x0010000000000000n, // denormals, min normal
  0x7fefffffffffffffn, 0xffefffffffffffffn, // ±max
  0x41e0000000000000n, 0xc1e0000000000000n, 0x41dfffffffc00000n, 0xc1e0000000200000n, // ±2^31, 2^31-1, -2^31-1
  0x43e0000000000000n, 0xc3e0000000000000n, 0x43f0000000000000n, // ±2^63, 2^64
  0x41f0000000000000n, 0x41f0000000800000n, // 2^32, 2^32 + 0.5
  0x400921fb54442d18n, 0x3ddb7cdfd9d7bdbbn, // pi, 1e-10
];

const F32_SPECIAL: readonly number[] = [
  0x00000000, 0x80000000, 0x3f800000, 0xbf800000, 0x3f000000, 0x3fc00000, 0x40200000, 0xc0200000,
  0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7fa00001, 0x7f800001, 0xff812345,
  0x00000001, 0x007fffff, 0x80000001, 0x00800000, 0x7f7fffff, 0xff7fffff,
  0x4f000000, 0xcf000000, 0x4effffff, 0xcf000001, 0x5f000000, 0xdf000000, 0x4f800000, 0x40490fdb, 0x2edbe6ff,
];

const CONVERT = new DataView(new ArrayBuffer(8));

function randomDouble(rng: Rng): bigint {
  const r = rng.below(10);
  if (r < 4) return rng.pick(F64_SPECIAL);
  if (r < 7) {
    // A "nice" double: small integer or halves (conversion rounding cases).
    const v = (rng.below(2001) - 1000) / (rng.chance(0.5) ? 1 : 4);
    CONVERT.setFloat64(0, v, true);
    return CONVERT.getBigUint64(0, true);
  }
  // Random sign and mantissa, exponent near 1.0 (ordinary arithmetic) or anywhere.
  const exp = rng.chance(0.7) ? BigInt(1023 + rng.range(-40, 40)) : BigInt(rng.below(2048));
  return (BigInt(rng.below(2)) << 63n) | (exp << 52n) | (rng.u64() & ((1n << 52n) - 1n));
}

function randomFloat(rng: Rng): number {
  const r = rng.below(10);
  if (r < 4) return rng.pick(F32_SPECIAL) >>> 0;
  if (r < 7) {
    const v = (rng.below(2001) - 1000) / (rng.chance(0.5) ? 1 : 4);
    CONVERT.setFloat32(0, v, true);
    return CONVERT.getUint32(0, true);
  }
  const exp = rng.chance(0.7) ? 127 + rng.range(-20, 20) : rng.below(256);
  return ((rng.below(2) << 31) | (exp << 23) | (rng.u32() & 0x7fffff)) >>> 0;
}

/** Fills 16 bytes at `at` with one flavour: raw bytes, doubles, floats or integers. */
export function fillVector(rng: Rng, out: Uint8Array, at: number, view?: DataView): void {
  const dv = view ?? new DataView(out.buffer, out.byteOffset, out.byteLength);
  switch (rng.below(4)) {
    case 0:
      for (let i = 0; i < 4; i++) dv.setUint32(at + i * 4, rng.u32(), true);
      break;
    case 1:
      dv.setBigUint64(at, randomDouble(rng), true);
      dv.setBigUint64(at + 8, randomDouble(rng), true);
      break;
    case 2:
      for (let i = 0; i < 4; i++) dv.setUint32(at + i * 4, randomFloat(rng), true);
      break;
    default:
      dv.setBigUint64(at, randomU64(rng), true);
      dv.setBigUint64(at + 8, randomU64(rng), true);
      break;
  }
}

/**
 * Scratch page: random bytes, with a quarter of its 16-byte chunks holding typed values
 * (doubles, floats, boundary integers) and some zeroed (string terminators).
 */
export function randomScratch(rng: Rng, size: number): Uint8Array {
  const out = rng.bytes(size);
  const view = new DataView(out.buffer);
  const chunks = size / 16;
  for (let n = 0; n < chunks / 4; n++) {
    const at = rng.below(chunks) * 16;
    if (rng.chance(0.15)) out.fill(0, at, at + 16);
    else fillVector(rng, out, at, view);
  }
  return out;
}
