/** Issue queue: dispatched µop seqs in age order (oldest first), compacted as µops issue. */
export class InstQueue {
  readonly seqs: Float64Array;
  count = 0;
  constructor(readonly numEntries: number) {
    this.seqs = new Float64Array(numEntries);
  }
  get full(): boolean {
    return this.count >= this.numEntries;
  }
  insert(seq: number): void {
    this.seqs[this.count++] = seq;
  }
  clear(): void {
    this.count = 0;
  }
}
