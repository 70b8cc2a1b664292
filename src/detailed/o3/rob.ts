/**
 * Reorder buffer and the µop record ring. Every µop gets a sequence number at decode; its record
 * lives at `ring[seq & mask]` until it commits. Three cursors split the ring in program order:
 *   [committedSeq, renamedSeq)  the ROB (renamed/dispatched, not yet committed)
 *   [renamedSeq, decodedSeq)    the decode→rename buffer
 */
import { nextPow2, UopRec } from './stageStructs.js';

export class ROB {
  private readonly ring: UopRec[];
  private readonly mask: number;
  /** Size of the µop record ring (a power of two). */
  readonly ringSize: number;
  committedSeq = 0;
  renamedSeq = 0;
  decodedSeq = 0;

  constructor(readonly numEntries: number, readonly decodeBufferSize: number) {
    const size = nextPow2(numEntries + decodeBufferSize + 1);
    this.mask = size - 1;
    this.ringSize = size;
    this.ring = Array.from({ length: size }, () => new UopRec());
  }

  at(seq: number): UopRec {
    return this.ring[seq & this.mask]!;
  }
  get robCount(): number {
    return this.renamedSeq - this.committedSeq;
  }
  get robFull(): boolean {
    return this.renamedSeq - this.committedSeq >= this.numEntries;
  }
  get empty(): boolean {
    return this.renamedSeq === this.committedSeq;
  }
  get decodeBufferCount(): number {
    return this.decodedSeq - this.renamedSeq;
  }
  get decodeBufferFull(): boolean {
    return this.decodedSeq - this.renamedSeq >= this.decodeBufferSize;
  }
  /** Allocates the record of the next decoded µop. */
  allocDecoded(): UopRec {
    return this.ring[this.decodedSeq++ & this.mask]!;
  }
  /** True when the µop `seq`'s result is available at `now` (committed µops always are). */
  resultReady(seq: number, now: number): boolean {
    if (seq < this.committedSeq) return true;
    return this.ring[seq & this.mask]!.doneCycle <= now;
  }
}
