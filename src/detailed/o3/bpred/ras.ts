/**
 * Return address stack: a circular buffer (overflow overwrites the oldest entry, as in hardware;
 * popping past the valid entries returns whatever stale address is there). Every push/pop returns
 * a checkpoint of the top-of-stack pointer (and, for a push, the entry it overwrote) so a
 * wrong-path call or return is undone exactly when checkpoints are restored youngest first.
 */

export interface RasCheckpoint {
  tos: number;
  /** Slot overwritten by a push and its previous value (−1: a pop, nothing overwritten). */
  slot: number;
  old: number;
}

export class ReturnAddressStack {
  readonly size: number;
  private readonly stack: Float64Array;
  private tos = 0;

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError('RAS size must be ≥ 1');
    this.size = size;
    this.stack = new Float64Array(size);
  }

  push(addr: number): RasCheckpoint {
    const tos = this.tos;
    const slot = (tos + 1) % this.size;
    const cp = { tos, slot, old: this.stack[slot]! };
    this.stack[slot] = addr;
    this.tos = slot;
    return cp;
  }

  top(): number {
    return this.stack[this.tos]!;
  }

  pop(): { target: number; checkpoint: RasCheckpoint } {
    const tos = this.tos;
    const target = this.stack[tos]!;
    this.tos = (tos - 1 + this.size) % this.size;
    return { target, checkpoint: { tos, slot: -1, old: 0 } };
  }

  restore(cp: RasCheckpoint): void {
    if (cp.slot >= 0) this.stack[cp.slot] = cp.old;
    this.tos = cp.tos;
  }
}

