/**
 * Issue queue. `count` is the number of dispatched, not yet issued µops. Of those, the ones whose
 * producers have all issued sit in the ready list (`seqs`, age order, oldest first) with the
 * cycle they can issue at (`wake` = max(their rename→IEW ready cycle, their producers' result
 * cycles); exact, since a result cycle never changes once set at issue). The others wait in a
 * list on one producer that has not issued yet (`waitHead` / `waitNext`, by ROB ring slot) and
 * are re-placed when it issues (`wakeDependents`). IEW scans only the ready list, oldest first,
 * which visits the same µops in the same order as scanning the whole queue would (µops not
 * ready have no effect when scanned).
 */
import type { ROB } from './rob.js';

export class InstQueue {
  /** Ready list: seqs in age order, and the cycle each may issue at. */
  readonly seqs: Float64Array;
  readonly wake: Float64Array;
  readyCount = 0;
  /** µops in the queue (ready list + waiting). */
  count = 0;
  private readonly waitHead: Float64Array;
  private readonly waitNext: Float64Array;
  private readonly mask: number;

  constructor(readonly numEntries: number, private readonly rob: ROB) {
    this.seqs = new Float64Array(numEntries);
    this.wake = new Float64Array(numEntries);
    this.mask = rob.ringSize - 1;
    this.waitHead = new Float64Array(rob.ringSize).fill(-1);
    this.waitNext = new Float64Array(rob.ringSize).fill(-1);
  }
  get full(): boolean {
    return this.count >= this.numEntries;
  }
  /** Dispatches µop `seq` (the youngest in the queue; its ready cycle and producers set). */
  insert(seq: number): void {
    this.count++;
    this.place(seq);
  }
  /** Producer `seq` has issued (its result cycle is set): re-places the µops waiting on it. */
  wakeDependents(seq: number): void {
    const slot = seq & this.mask;
    let c = this.waitHead[slot]!;
    if (c < 0) return;
    this.waitHead[slot] = -1;
    while (c >= 0) {
      const next = this.waitNext[c & this.mask]!;
      this.place(c);
      c = next;
    }
  }
  private place(seq: number): void {
    const rob = this.rob;
    const committedSeq = rob.committedSeq;
    const rec = rob.at(seq);
    let wk = rec.readyAt;
    const prod = rec.prod;
    const n = rec.nProd;
    for (let i = 0; i < n; i++) {
      const p = prod[i]!;
      if (p < committedSeq) continue;
      const d = rob.at(p).doneCycle;
      if (d === Infinity) {
        const ps = p & this.mask;
        this.waitNext[seq & this.mask] = this.waitHead[ps]!;
        this.waitHead[ps] = seq;
        return;
      }
      if (d > wk) wk = d;
    }
    // Sorted insert into the ready list (usually at the end).
    const seqs = this.seqs;
    const wake = this.wake;
    let i = this.readyCount++;
    while (i > 0 && seqs[i - 1]! > seq) {
      seqs[i] = seqs[i - 1]!;
      wake[i] = wake[i - 1]!;
      i--;
    }
    seqs[i] = seq;
    wake[i] = wk;
  }
  clear(): void {
    this.count = 0;
    this.readyCount = 0;
    this.waitHead.fill(-1);
  }
}
