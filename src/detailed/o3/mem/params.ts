/** Parameter resolution for the memory-hierarchy models: defaults + validated overrides. */
import { defaults, type ParamSpecs, type ParamValues } from '../types.js';

/** The spec table's values with `overrides` applied; unknown keys and wrongly typed values throw. */
export function resolveParams<S extends ParamSpecs>(specs: S, overrides: Partial<ParamValues<S>> | undefined, what: string): ParamValues<S> {
  const out = defaults(specs);
  if (!overrides) return out;
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) continue;
    const spec = specs[k];
    if (!spec) throw new Error(`${what}: unknown parameter '${k}' (known: ${Object.keys(specs).join(', ')})`);
    if (typeof v !== typeof spec.default) throw new Error(`${what}.${k}: expected ${typeof spec.default}, got ${typeof v}`);
    (out as Record<string, unknown>)[k] = v;
  }
  return out;
}

/** A copy of `specs` with some defaults replaced (per-level tables sharing one description set). */
export function withDefaults<S extends ParamSpecs>(specs: S, defs: Partial<ParamValues<S>>): S {
  const out: Record<string, { default: unknown; desc: string }> = {};
  for (const [k, v] of Object.entries(specs)) {
    const d = (defs as Record<string, unknown>)[k];
    out[k] = { default: d === undefined ? v.default : d, desc: v.desc };
  }
  return out as S;
}

export function isPow2(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

/** For `setIndex`: sets - 1 when the set count is a power of two, else -1. */
export function setMaskOf(sets: number): number {
  return isPow2(sets) ? sets - 1 : -1;
}

/**
 * The set of line or page number `n`. Numbers of high user addresses exceed 2^31, so they are
 * doubles, and `%` on them is a slow fmod: with a power-of-two set count, mask the low 32 bits
 * (exact below 2^53; 2^32 is a multiple of the set count).
 */
export function setIndex(n: number, sets: number, mask: number): number {
  return mask >= 0 ? (n >>> 0) & mask : n % sets;
}
