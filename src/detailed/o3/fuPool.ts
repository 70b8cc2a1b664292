/**
 * Functional-unit pool: unit types (from `fuTypes(params)`), each with a count; each op class maps
 * to one unit type with a latency and whether it is pipelined (a pipelined unit accepts a new op
 * every cycle, an unpipelined one is busy for the whole latency).
 */
import { fuTypes, OP_CLASSES, OPCLASS_INDEX, type O3Params } from './params.js';

export class FUPool {
  /** busyUntil per unit, grouped per type: units of type t are [typeStart[t], typeStart[t+1]). */
  private readonly busyUntil: Float64Array;
  private readonly typeStart: Int32Array;
  /** Per op class: unit type (-1 = needs no unit), latency, pipelined. */
  readonly clsType: Int32Array;
  readonly clsLat: Float64Array;
  readonly clsPipelined: Uint8Array;
  /** Per op class: cycles a ready µop could not issue because all its units were busy. */
  readonly fuBusy: Float64Array;

  constructor(p: O3Params) {
    const types = fuTypes(p);
    this.typeStart = new Int32Array(types.length + 1);
    let n = 0;
    types.forEach((t, i) => {
      this.typeStart[i] = n;
      n += Math.max(0, t.count);
    });
    this.typeStart[types.length] = n;
    this.busyUntil = new Float64Array(n);
    const nc = OP_CLASSES.length;
    this.clsType = new Int32Array(nc).fill(-1);
    this.clsLat = new Float64Array(nc).fill(1);
    this.clsPipelined = new Uint8Array(nc).fill(1);
    this.fuBusy = new Float64Array(nc);
    types.forEach((t, ti) => {
      for (const c of t.classes) {
        const ci = OPCLASS_INDEX[c.cls];
        this.clsType[ci] = ti;
        this.clsLat[ci] = c.lat;
        this.clsPipelined[ci] = c.pipelined ? 1 : 0;
      }
    });
  }

  /** Claims a unit for class `cls` at `now`; false (and counts fuBusy) when none is free. */
  acquire(cls: number, now: number): boolean {
    const t = this.clsType[cls]!;
    if (t < 0) return true;
    const end = this.typeStart[t + 1]!;
    for (let u = this.typeStart[t]!; u < end; u++) {
      if (this.busyUntil[u]! <= now) {
        this.busyUntil[u] = this.clsPipelined[cls] ? now + 1 : now + Math.max(1, this.clsLat[cls]!);
        return true;
      }
    }
    this.fuBusy[cls]!++;
    return false;
  }

  /** The earliest future cycle a busy unit frees up (Infinity if none is busy). */
  nextFree(now: number): number {
    let t = Infinity;
    for (let u = 0; u < this.busyUntil.length; u++) {
      const b = this.busyUntil[u]!;
      if (b > now && b < t) t = b;
    }
    return t;
  }

  resetStats(): void {
    this.fuBusy.fill(0);
  }
}
