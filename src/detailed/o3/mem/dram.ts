/**
 * Main memory as a latency + bandwidth timing model: every line transfer occupies the data bus
 * for `lineSize / bytesPerCycle` cycles, so independent requests overlap (each completes
 * `latency` cycles after its transfer slot starts) until the bus saturates. Writebacks take bus
 * slots too (reads are not reordered ahead of writes already queued).
 */
import type { Stat } from '../../../stats.js';
import type { ParamValues } from '../types.js';
import type { MemLevel } from './level.js';
import { resolveParams } from './params.js';

export const DRAM_PARAMS = {
  latency: { default: 200, desc: 'Cycles from the start of a line read until its data arrives (unloaded latency beyond the last cache)' },
  bytesPerCycle: { default: 8, desc: 'Peak bandwidth in bytes per CPU cycle (e.g. DDR4-3200 single channel at 3 GHz ≈ 8.5)' },
  lineSize: { default: 64, desc: 'Bytes per transfer (the last-level cache line size)' },
};
export type DramParams = ParamValues<typeof DRAM_PARAMS>;

export class Dram implements MemLevel {
  readonly p: DramParams;
  /** Bus cycles one line transfer occupies. */
  readonly gap: number;
  private busFreeAt = 0;
  private reads = 0;
  private writes = 0;
  private queueCycles = 0;

  constructor(
    readonly name: string,
    params?: Partial<DramParams>,
  ) {
    this.p = resolveParams(DRAM_PARAMS, params, name);
    if (!(this.p.latency >= 0) || !(this.p.bytesPerCycle > 0) || !(this.p.lineSize > 0)) throw new Error(`${name}: bad DRAM parameters`);
    this.gap = this.p.lineSize / this.p.bytesPerCycle;
  }

  access(_addr: number, _isWrite: boolean, now: number): number {
    const start = Math.max(now, this.busFreeAt);
    this.busFreeAt = start + this.gap;
    this.reads++;
    this.queueCycles += start - now;
    // Whole cycles: the bus start is rounded to the nearest cycle (several lines may start in one
    // cycle when the bandwidth exceeds a line per cycle).
    return Math.round(start) + this.p.latency;
  }

  writeback(_addr: number, now: number): void {
    const start = Math.max(now, this.busFreeAt);
    this.busFreeAt = start + this.gap;
    this.writes++;
  }

  warm(): void {}
  warmWriteback(): void {}

  resetStats(): void {
    this.reads = this.writes = this.queueCycles = 0;
  }

  /** Forget bus occupancy (e.g. after switching in). */
  resetTiming(): void {
    this.busFreeAt = 0;
  }

  stats(): Stat[] {
    const n = this.name;
    return [
      { name: `${n}.readReqs`, value: this.reads, desc: 'Line reads serviced' },
      { name: `${n}.writeReqs`, value: this.writes, desc: 'Line writebacks received' },
      { name: `${n}.bytesRead`, value: this.reads * this.p.lineSize, desc: 'Bytes read', unit: 'bytes' },
      { name: `${n}.bytesWritten`, value: this.writes * this.p.lineSize, desc: 'Bytes written', unit: 'bytes' },
      { name: `${n}.avgQueueLat`, value: this.reads ? this.queueCycles / this.reads : 0, desc: 'Average cycles a read waited for the data bus', unit: 'cycles' },
    ];
  }
}
