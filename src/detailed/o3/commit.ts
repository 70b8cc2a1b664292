/**
 * Commit stage: retires µops in program order, up to `commitWidth` per cycle, once their result
 * has been available for `iewToCommitDelay` cycles. Stores access memory here (`mem.store`; -1
 * stalls commit and retries next cycle) and keep their SQ entry until the write completes.
 * An instruction counts as committed with its last µop. A committed serializing instruction
 * restarts fetch after `commitToFetchDelay`. Commit stops at an instruction-count limit so
 * `run(maxInsts)` ends exactly.
 */
import { CLS_MEMREAD, CLS_MEMWRITE, type O3Params } from './params.js';
import type { ROB } from './rob.js';
import type { LSQ } from './lsq.js';
import type { RenameStage } from './rename.js';
import type { FetchStage } from './fetch.js';
import type { O3MemPort } from './stageStructs.js';

export class CommitStage {
  private readonly width: number;
  private readonly i2c: number;
  private readonly c2f: number;
  /** Instruction-count limit (absolute, in committedInstsTotal). */
  limit = Infinity;
  committedInstsTotal = 0;
  /** The rip of the next instruction to commit (-1 before the first commit). */
  nextPc = -1;
  committedOpsTotal = 0;

  committedInsts = 0;
  committedOps = 0;
  loads = 0;
  stores = 0;
  branches = 0;
  branchMispredicts = 0;
  serializing = 0;
  storeRetries = 0;
  idleCycles = 0;
  headBlockedCycles = 0;

  constructor(
    p: O3Params,
    private readonly rob: ROB,
    private readonly lsq: LSQ,
    private readonly rename: RenameStage,
    private readonly fetch: FetchStage,
    private readonly mem: O3MemPort,
  ) {
    this.width = p.commitWidth;
    this.i2c = p.iewToCommitDelay;
    this.c2f = p.commitToFetchDelay;
  }

  tick(now: number): void {
    const rob = this.rob;
    this.lsq.retireStores(now);
    let n = 0;
    while (n < this.width && !rob.empty && this.committedInstsTotal < this.limit) {
      const rec = rob.at(rob.committedSeq);
      if (rec.doneCycle + this.i2c > now) {
        if (n === 0) this.headBlockedCycles++;
        break;
      }
      const cls = rec.cls;
      if (cls === CLS_MEMWRITE) {
        if (rec.sqIdx >= 0) {
          const c = rec.memSize > 0 ? this.mem.store(rec.memAddr, rec.memSize, now) : now;
          if (c < 0) {
            this.storeRetries++;
            break;
          }
          this.lsq.storeCommitted(rec.sqIdx, Math.max(c, now + 1));
        }
        this.stores++;
      } else if (cls === CLS_MEMREAD) {
        this.lsq.lqCount--;
        this.loads++;
      }
      this.rename.freeRegs(rec);
      rob.committedSeq++;
      this.committedOps++;
      this.committedOpsTotal++;
      n++;
      if (rec.isBranch) {
        this.branches++;
        if (rec.mispredicted) this.branchMispredicts++;
      }
      if (rec.serialize) {
        this.serializing++;
        this.fetch.serializeDone(now + this.c2f);
      }
      if (rec.isLast) {
        this.committedInsts++;
        this.committedInstsTotal++;
        this.nextPc = rec.inst!.nextPc;
      }
      rec.inst = null;
      rec.uop = null;
      rec.bpHandle = null;
    }
    if (n === 0 && rob.empty) this.idleCycles++;
  }

  resetStats(): void {
    this.committedInsts = this.committedOps = this.loads = this.stores = this.branches = 0;
    this.branchMispredicts = this.serializing = this.storeRetries = this.idleCycles = this.headBlockedCycles = 0;
  }
}
