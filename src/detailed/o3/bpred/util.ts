/** Small helpers shared by the branch-prediction structures. */

/** Low 32 bits of a (≤ 2^53) pc as an unsigned int: table indices use the low pc bits like gem5. */
export function pcLow(pc: number): number {
  return pc >>> 0;
}

/** A 32-bit mix of the whole pc (high bits included): for tags of 48-bit addresses. */
export function pcHash(pc: number): number {
  const hi = Math.floor(pc / 4294967296) >>> 0;
  return (pc >>> 0) ^ Math.imul(hi, 0x9e3779b1);
}

export function isPow2(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

export function log2(n: number): number {
  return Math.round(Math.log2(n));
}

export function requirePow2(name: string, n: number): void {
  if (!isPow2(n)) throw new RangeError(`${name} must be a power of two, got ${n}`);
}

/** Saturating counter step within [0, max]. */
export function satUpdate(v: number, up: boolean, max: number): number {
  return up ? (v < max ? v + 1 : v) : v > 0 ? v - 1 : v;
}
