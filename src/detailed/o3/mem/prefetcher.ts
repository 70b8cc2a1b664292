/**
 * A PC-indexed stride prefetcher (gem5's StridePrefetcher, simplified). Each demand access
 * trains the entry of its PC: the same stride as last time raises the confidence, a different
 * one lowers it (and replaces the stride when the confidence reaches 0). With confidence ≥
 * `threshold`, the next `degree` lines along the stride are proposed (strides smaller than a
 * line advance by whole lines); the cache issues those not present or in flight while MSHRs
 * are free. Issued/useful/late counts are kept by the cache it is attached to.
 */
import type { Stat } from '../../../stats.js';
import type { ParamValues } from '../types.js';
import { resolveParams } from './params.js';

export const PREFETCHER_PARAMS = {
  tableEntries: { default: 64, desc: 'PCs tracked by the stride table (least recently inserted replaced)' },
  degree: { default: 4, desc: 'Lines prefetched ahead on a confirmed stride' },
  threshold: { default: 2, desc: 'Confidence needed before prefetching' },
  maxConfidence: { default: 3, desc: 'Saturation value of the per-PC confidence counter' },
};
export type PrefetcherParams = ParamValues<typeof PREFETCHER_PARAMS>;

interface Entry {
  last: number;
  stride: number;
  conf: number;
}

export class StridePrefetcher {
  readonly p: PrefetcherParams;
  private readonly table = new Map<number, Entry>();
  private identified = 0;

  constructor(params?: Partial<PrefetcherParams>, what = 'prefetcher') {
    this.p = resolveParams(PREFETCHER_PARAMS, params, what);
    if (!(this.p.tableEntries >= 1) || !(this.p.degree >= 0)) throw new Error(`${what}: bad parameters`);
  }

  /** Trains on a demand access; returns the addresses to prefetch (possibly none). */
  observe(pc: number, addr: number, lineSize: number): number[] {
    let e = this.table.get(pc);
    if (!e) {
      if (this.table.size >= this.p.tableEntries) {
        const first = this.table.keys().next().value;
        if (first !== undefined) this.table.delete(first);
      }
      this.table.set(pc, { last: addr, stride: 0, conf: 0 });
      return [];
    }
    const stride = addr - e.last;
    e.last = addr;
    if (stride === 0) return [];
    if (stride === e.stride) {
      if (e.conf < this.p.maxConfidence) e.conf++;
    } else {
      if (e.conf > 0) e.conf--;
      if (e.conf === 0) e.stride = stride;
      return [];
    }
    if (e.conf < this.p.threshold) return [];
    const step = Math.abs(stride) < lineSize ? (stride < 0 ? -lineSize : lineSize) : stride;
    const out: number[] = [];
    for (let d = 1; d <= this.p.degree; d++) out.push(addr + d * step);
    this.identified += out.length;
    return out;
  }

  resetStats(): void {
    this.identified = 0;
  }

  stats(prefix: string): Stat[] {
    return [{ name: `${prefix}.pfIdentified`, value: this.identified, desc: 'Prefetch candidates generated (before filtering)' }];
  }
}
