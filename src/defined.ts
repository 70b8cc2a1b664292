/**
 * The fields of `o` that are not undefined. With exactOptionalPropertyTypes an optional field may
 * be absent but not `undefined`, so options passed on from an optional source go through this
 * instead of a `...(x !== undefined ? { x } : {})` per field.
 */
export function definedFields<T extends object>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  const out: Partial<Record<keyof T, unknown>> = {};
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] !== undefined) out[k] = o[k];
  return out as { [K in keyof T]?: Exclude<T[K], undefined> };
}
