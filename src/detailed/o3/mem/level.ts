/** The interface between levels of the (timing-only) memory hierarchy. Time is in CPU cycles. */
export interface MemLevel {
  /**
   * A read (line fill) or write request arriving at cycle `now`. Returns the cycle at which it
   * completes, or -1 when the level cannot accept it now (all MSHRs busy): retry later.
   * `pc` (optional) is the requesting instruction's address, for PC-indexed prefetchers.
   */
  access(addr: number, isWrite: boolean, now: number, pc?: number): number;
  /** A dirty line written back from the level above at `now` (no response; uses bandwidth). */
  writeback(addr: number, now: number): void;
  /** Functional warming: update tags/LRU/dirty state with no timing. */
  warm(addr: number, isWrite: boolean): void;
  /** Functional warming of a writeback from the level above. */
  warmWriteback(addr: number): void;
}
