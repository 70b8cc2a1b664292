/**
 * Decode stage: cracks fetched instructions into µops (the functional core already supplies the
 * µops of each DynInst), up to `decodeWidth` µops per cycle, into the decode→rename buffer (a
 * range of the ROB's µop ring). An instruction may be split across cycles. An instruction
 * without µops gets one Nop µop so it still commits.
 */
import { CLS_SERIALIZE, OPCLASS_INDEX, type O3Params } from './params.js';
import type { ROB } from './rob.js';
import type { FetchStage } from './fetch.js';
import { REG_TMP, REG_XMM0, type MicroOp } from './types.js';

const NOP_UOP: MicroOp = { cls: 'Nop', srcs: [], dsts: [] };

export class DecodeStage {
  private readonly width: number;
  private readonly d2r: number;
  decodedOps = 0;
  idleCycles = 0;
  blockedCycles = 0;

  constructor(p: O3Params, private readonly fetch: FetchStage, private readonly rob: ROB) {
    this.width = p.decodeWidth;
    this.d2r = p.decodeToRenameDelay;
  }

  tick(now: number): void {
    const q = this.fetch.queue;
    let n = 0;
    while (n < this.width) {
      const slot = q.peek();
      if (slot === undefined || slot.readyAt > now) break;
      if (this.rob.decodeBufferFull) {
        this.blockedCycles++;
        break;
      }
      const inst = slot.inst!;
      const uops = inst.uops.length > 0 ? inst.uops : [NOP_UOP];
      const i = slot.uopCursor;
      const u = uops[i]!;
      const rec = this.rob.allocDecoded();
      const ci = u.clsIdx;
      const cls = ci !== undefined ? ci : (OPCLASS_INDEX[u.cls] ?? 0);
      rec.reset(this.rob.decodedSeq - 1, inst, u, cls);
      rec.readyAt = now + this.d2r;
      rec.serialize = cls === CLS_SERIALIZE;
      const pi = u.nIntDsts;
      if (pi !== undefined) {
        rec.intDsts = pi;
        rec.fpDsts = u.nFpDsts!;
      } else {
        rec.intDsts = countIntDsts(u.dsts);
        rec.fpDsts = u.dsts.length - rec.intDsts;
      }
      const last = i === uops.length - 1;
      if (last) {
        rec.isLast = true;
        q.shift();
      } else {
        slot.uopCursor = i + 1;
      }
      if (slot.hasPrediction && i === branchUopIndex(uops)) {
        // The branch µop is the last Branch-class µop of the instruction (or its last µop).
        rec.isBranch = true;
        rec.bpHandle = slot.bpHandle;
        rec.hasPrediction = true;
        rec.mispredicted = slot.mispredicted;
      }
      this.decodedOps++;
      n++;
    }
    if (n === 0 && q.count === 0) this.idleCycles++;
  }

  resetStats(): void {
    this.decodedOps = this.idleCycles = this.blockedCycles = 0;
  }
}

/** Destinations that take an integer physical register (the rest take FP ones). */
export function countIntDsts(dsts: readonly number[]): number {
  let nInt = 0;
  for (const d of dsts) {
    // The µop temporary counts as an integer register (as gem5's x86 microcode temps).
    if (d < REG_XMM0 || d === REG_TMP) nInt++;
  }
  return nInt;
}

/** The µop that resolves the branch: the last Branch-class µop, else the last µop. */
function branchUopIndex(uops: readonly MicroOp[]): number {
  for (let k = uops.length - 1; k >= 0; k--) if (uops[k]!.cls === 'Branch') return k;
  return uops.length - 1;
}
