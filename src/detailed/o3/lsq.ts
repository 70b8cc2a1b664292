/**
 * Load and store queues.
 *
 * Store queue: a ring of stores in program order, from rename until the committed store has been
 * written to the memory system (stores access memory at commit; the entry is held until the
 * write completes, modelling the store buffer).
 *
 * Memory dependence policy (documented choice: wait, never replay): a load may issue only when
 * every older store that overlaps it has executed (address and data known). Older stores that do
 * not overlap never block it — the actual addresses are known from the functional core, so this
 * is an ideal store-set predictor with no memory-order violations and no replays.
 * Store-to-load forwarding: when the youngest older overlapping store has executed and covers the
 * load completely, the load gets its data after `storeForwardLatency` cycles without accessing
 * memory; a partial overlap waits until that store has been written.
 *
 * Load queue: occupancy only (allocated at rename, freed at commit).
 */
export const LOAD_WAIT = -2;
export const LOAD_TO_MEMORY = -1;

export class LSQ {
  private readonly sqSeq: Float64Array;
  private readonly sqAddr: Float64Array;
  private readonly sqSize: Float64Array;
  /** Cycle the store's address and data are known (Infinity until it executes). */
  private readonly sqExecAt: Float64Array;
  /** Cycle the committed store's write completes (Infinity until committed). */
  private readonly sqWriteDone: Float64Array;
  private sqHead = 0;
  sqCount = 0;
  lqCount = 0;

  constructor(readonly LQEntries: number, readonly SQEntries: number, readonly forwarding: boolean, readonly forwardLat: number) {
    const n = Math.max(1, SQEntries);
    this.sqSeq = new Float64Array(n);
    this.sqAddr = new Float64Array(n);
    this.sqSize = new Float64Array(n);
    this.sqExecAt = new Float64Array(n);
    this.sqWriteDone = new Float64Array(n);
  }

  get lqFull(): boolean {
    return this.lqCount >= this.LQEntries;
  }
  get sqFull(): boolean {
    return this.sqCount >= this.SQEntries;
  }
  get empty(): boolean {
    return this.sqCount === 0 && this.lqCount === 0;
  }

  allocStore(seq: number, addr: number, size: number): number {
    const i = (this.sqHead + this.sqCount) % this.SQEntries;
    this.sqCount++;
    this.sqSeq[i] = seq;
    this.sqAddr[i] = addr;
    this.sqSize[i] = size;
    this.sqExecAt[i] = Infinity;
    this.sqWriteDone[i] = Infinity;
    return i;
  }
  storeExecuted(idx: number, at: number): void {
    this.sqExecAt[idx] = at;
  }
  storeCommitted(idx: number, writeDone: number): void {
    this.sqWriteDone[idx] = writeDone;
  }
  /** Frees written stores from the head. */
  retireStores(now: number): void {
    while (this.sqCount > 0 && this.sqWriteDone[this.sqHead]! <= now) {
      this.sqHead = (this.sqHead + 1) % this.SQEntries;
      this.sqCount--;
    }
  }

  /** The earliest future cycle a committed store's write completes (Infinity if none pending). */
  nextWriteDone(now: number): number {
    let t = Infinity;
    for (let k = 0; k < this.sqCount; k++) {
      const w = this.sqWriteDone[(this.sqHead + k) % this.SQEntries]!;
      if (w > now && w < t) t = w;
    }
    return t;
  }

  /**
   * What a load may do now: LOAD_WAIT (an older overlapping store is unresolved or only partly
   * covers it), LOAD_TO_MEMORY, or the cycle its forwarded data is ready.
   */
  checkLoad(loadSeq: number, addr: number, size: number, now: number): number {
    const cap = this.SQEntries;
    for (let k = this.sqCount - 1; k >= 0; k--) {
      const i = (this.sqHead + k) % cap;
      if (this.sqSeq[i]! > loadSeq) continue;
      const sa = this.sqAddr[i]!;
      const ss = this.sqSize[i]!;
      if (sa >= addr + size || addr >= sa + ss) continue;
      // Youngest older overlapping store.
      if (this.sqWriteDone[i]! <= now) return LOAD_TO_MEMORY;
      if (this.sqExecAt[i]! > now) return LOAD_WAIT;
      if (this.forwarding && sa <= addr && addr + size <= sa + ss) return now + this.forwardLat;
      return LOAD_WAIT;
    }
    return LOAD_TO_MEMORY;
  }
}
