/**
 * Rename (and dispatch) stage. Dependences go through a rename map from architectural register
 * to the seq of its youngest in-flight producer µop; a free-register count per class models the
 * physical register files (a destination holds a physical register from rename to commit).
 * Up to min(renameWidth, dispatchWidth) µops per cycle are renamed and dispatched into the ROB,
 * the issue queue and the LQ/SQ; they may issue `renameToIEWDelay` cycles later.
 * Stalls (one count per cycle, first cause found in this order): serializing µop waiting for an
 * empty ROB, ROB full, IQ full, LQ full, SQ full, integer / FP physical registers exhausted.
 */
import { CLS_MEMREAD, CLS_MEMWRITE, type O3Params } from './params.js';
import type { ROB } from './rob.js';
import type { InstQueue } from './instQueue.js';
import type { LSQ } from './lsq.js';
import { MAX_SRCS, type UopRec } from './stageStructs.js';
import { NUM_ARCH_REGS, REG_TMP, REG_XMM0 } from './types.js';

export class RenameStage {
  private readonly renameMap = new Float64Array(NUM_ARCH_REGS).fill(-1);
  private readonly width: number;
  private readonly r2i: number;
  private intFree: number;
  private fpFree: number;

  renamedOps = 0;
  idleCycles = 0;
  runCycles = 0;
  robFullEvents = 0;
  iqFullEvents = 0;
  lqFullEvents = 0;
  sqFullEvents = 0;
  intRegFullEvents = 0;
  fpRegFullEvents = 0;
  serializeStallCycles = 0;

  constructor(p: O3Params, private readonly rob: ROB, private readonly iq: InstQueue, private readonly lsq: LSQ) {
    this.width = Math.min(p.renameWidth, p.dispatchWidth);
    this.r2i = p.renameToIEWDelay;
    // Architectural mappings permanently hold one physical register each: GPRs + flags + the µop
    // temporary (integer), xmm + mxcsr + x87 (float).
    this.intFree = p.numPhysIntRegs - (REG_XMM0 + 1);
    this.fpFree = p.numPhysFloatRegs - (REG_TMP - REG_XMM0);
    if (this.intFree <= 0 || this.fpFree <= 0) throw new Error('o3: numPhysIntRegs/numPhysFloatRegs must exceed the architectural registers');
  }

  /** Commit frees the physical registers of a retiring µop's destinations. */
  freeRegs(rec: UopRec): void {
    this.intFree += rec.intDsts;
    this.fpFree += rec.fpDsts;
  }

  tick(now: number): void {
    const rob = this.rob;
    let n = 0;
    while (n < this.width) {
      if (rob.renamedSeq === rob.decodedSeq) break;
      const rec = rob.at(rob.renamedSeq);
      if (rec.readyAt > now) break;
      if (rec.serialize && !rob.empty) {
        this.serializeStallCycles++;
        break;
      }
      if (rob.robFull) {
        this.robFullEvents++;
        break;
      }
      if (this.iq.full) {
        this.iqFullEvents++;
        break;
      }
      const cls = rec.cls;
      if (cls === CLS_MEMREAD && this.lsq.lqFull) {
        this.lqFullEvents++;
        break;
      }
      if (cls === CLS_MEMWRITE && this.lsq.sqFull) {
        this.sqFullEvents++;
        break;
      }
      if (rec.intDsts > this.intFree) {
        this.intRegFullEvents++;
        break;
      }
      if (rec.fpDsts > this.fpFree) {
        this.fpRegFullEvents++;
        break;
      }
      const uop = rec.uop!;
      const seq = rec.seq;
      const committed = rob.committedSeq;
      let np = 0;
      for (const s of uop.srcs) {
        if (s >= NUM_ARCH_REGS || s < 0) continue;
        const p = this.renameMap[s]!;
        if (p >= committed && np < MAX_SRCS) rec.prod[np++] = p;
      }
      rec.nProd = np;
      for (const d of uop.dsts) if (d >= 0 && d < NUM_ARCH_REGS) this.renameMap[d] = seq;
      this.intFree -= rec.intDsts;
      this.fpFree -= rec.fpDsts;
      if (cls === CLS_MEMREAD) this.lsq.lqCount++;
      else if (cls === CLS_MEMWRITE) rec.sqIdx = this.lsq.allocStore(seq, rec.memAddr, rec.memSize);
      rec.readyAt = now + this.r2i;
      this.iq.insert(seq);
      rob.renamedSeq++;
      this.renamedOps++;
      n++;
    }
    if (n > 0) this.runCycles++;
    else if (rob.renamedSeq === rob.decodedSeq) this.idleCycles++;
  }

  resetStats(): void {
    this.renamedOps = this.idleCycles = this.runCycles = 0;
    this.robFullEvents = this.iqFullEvents = this.lqFullEvents = this.sqFullEvents = 0;
    this.intRegFullEvents = this.fpRegFullEvents = this.serializeStallCycles = 0;
  }
}
