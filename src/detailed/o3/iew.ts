/**
 * Issue / execute / writeback. Each cycle the ready µops of the issue queue are scanned oldest first (see instQueue.ts); a µop issues
 * when it has passed the rename→IEW delay, all its producers' results are available, a
 * functional unit of its class is free, and (at most `issueWidth` per cycle). Its result is
 * available `latency` cycles later, moved later if `wbWidth` results already write back in that
 * cycle.
 *  - Loads: memory dependence and forwarding per `lsq.ts` (wait for overlapping older stores;
 *    forward from a covering executed store), else `mem.load`; -1 (MSHRs full) retries the next
 *    cycle (that cycle's port slot is spent).
 *  - Stores: execute (address + data) here in one cycle; the memory write happens at commit.
 *  - Branches: resolved here; the predictor is trained (`resolve`) at execute. A branch fetch
 *    found mispredicted redirects fetch `branchRedirectDelay` cycles after its result is ready.
 *  - Serializing µops issue only at the ROB head (they were dispatched into an empty ROB).
 *  - Nop and Serialize µops need no functional unit.
 */
import { CLS_MEMREAD, CLS_MEMWRITE, CLS_NOP, CLS_SERIALIZE, type O3Params } from './params.js';
import type { ROB } from './rob.js';
import type { InstQueue } from './instQueue.js';
import { LOAD_TO_MEMORY, LOAD_WAIT, type LSQ } from './lsq.js';
import type { FUPool } from './fuPool.js';
import type { FetchStage } from './fetch.js';
import type { O3BPredPort, O3MemPort, UopRec } from './stageStructs.js';
import type { BranchInfo } from './types.js';

const WB_RING = 4096;

export class IEWStage {
  private readonly issueWidth: number;
  private readonly wbWidth: number;
  private readonly redirectDelay: number;
  private readonly serializeLat: number;
  private readonly wbCycle = new Float64Array(WB_RING).fill(-1);
  private readonly wbCount = new Int32Array(WB_RING);
  /** Seqs of the µops issued in the current cycle. */
  private readonly issuedSeqs: Float64Array;

  issuedOps = 0;
  execLoads = 0;
  execStores = 0;
  execBranches = 0;
  forwardedLoads = 0;
  memOrderWaits = 0;
  loadRetries = 0;
  branchMispredicts = 0;
  predictorDisagreements = 0;
  wbDelayed = 0;
  squashedPredictions = 0;

  constructor(
    p: O3Params,
    private readonly rob: ROB,
    private readonly iq: InstQueue,
    private readonly lsq: LSQ,
    private readonly fu: FUPool,
    private readonly fetch: FetchStage,
    private readonly mem: O3MemPort,
    private readonly bpred: O3BPredPort,
  ) {
    this.issueWidth = p.issueWidth;
    this.issuedSeqs = new Float64Array(p.issueWidth);
    this.wbWidth = p.wbWidth;
    this.redirectDelay = p.branchRedirectDelay;
    this.serializeLat = p.serializeLat;
  }

  /** Claims a writeback slot at or after `c`. */
  private writeback(c: number): number {
    for (;;) {
      const i = c & (WB_RING - 1);
      if (this.wbCycle[i] !== c) {
        this.wbCycle[i] = c;
        this.wbCount[i] = 1;
        return c;
      }
      if (this.wbCount[i]! < this.wbWidth) {
        this.wbCount[i]!++;
        return c;
      }
      this.wbDelayed++;
      c++;
    }
  }

  tick(now: number): void {
    const iq = this.iq;
    const seqs = iq.seqs;
    const wake = iq.wake;
    const rob = this.rob;
    const fu = this.fu;
    const committedSeq = rob.committedSeq;
    const issueWidth = this.issueWidth;
    const issuedSeqs = this.issuedSeqs;
    let issued = 0;
    let w = 0;
    const count = iq.readyCount;
    let r = 0;
    for (; r < count && issued < issueWidth; r++) {
      const seq = seqs[r]!;
      if (wake[r]! > now) {
        if (w !== r) {
          seqs[w] = seq;
          wake[w] = wake[r]!;
        }
        w++;
        continue;
      }
      const rec = rob.at(seq);
      const cls = rec.cls;
      let done: number;
      if (cls === CLS_SERIALIZE) {
        if (seq !== committedSeq) {
          this.keep(w++, r);
          continue;
        }
        done = now + this.serializeLat;
      } else if (cls === CLS_NOP) {
        done = now + 1;
      } else if (cls === CLS_MEMREAD && rec.memSize > 0) {
        const f = this.lsq.checkLoad(seq, rec.memAddr, rec.memSize, now);
        if (f === LOAD_WAIT) {
          this.memOrderWaits++;
          this.keep(w++, r);
          continue;
        }
        if (!fu.acquire(cls, now)) {
          this.keep(w++, r);
          continue;
        }
        if (f === LOAD_TO_MEMORY) {
          const c = this.mem.load(rec.memAddr, rec.memSize, now);
          if (c < 0) {
            this.loadRetries++;
            this.keep(w++, r);
            continue;
          }
          done = Math.max(c, now + 1);
        } else {
          this.forwardedLoads++;
          done = f;
        }
        this.execLoads++;
      } else {
        if (!fu.acquire(cls, now)) {
          this.keep(w++, r);
          continue;
        }
        done = now + Math.max(1, fu.clsLat[cls]!);
        if (cls === CLS_MEMWRITE) {
          this.execStores++;
          if (rec.sqIdx >= 0) this.lsq.storeExecuted(rec.sqIdx, done);
        }
      }
      done = this.writeback(done);
      rec.doneCycle = done;
      issuedSeqs[issued++] = seq;
      this.issuedOps++;
      if (rec.isBranch) this.resolveBranch(rec, done);
    }
    if (issued === 0) return;
    // Keep the µops not scanned this cycle.
    for (; r < count; r++) this.keep(w++, r);
    iq.readyCount = w;
    iq.count -= issued;
    // Dependents of the µops issued now cannot issue before the next cycle.
    for (let i = 0; i < issued; i++) iq.wakeDependents(issuedSeqs[i]!);
  }

  /** Moves ready-list entry `r` to position `w` (w <= r). */
  private keep(w: number, r: number): void {
    if (w === r) return;
    const iq = this.iq;
    iq.seqs[w] = iq.seqs[r]!;
    iq.wake[w] = iq.wake[r]!;
  }

  private resolveBranch(rec: UopRec, done: number): void {
    this.execBranches++;
    const inst = rec.inst!;
    const actual: BranchInfo = inst.branch!;
    const bpMiss = this.bpred.resolve(rec.bpHandle, actual);
    if (bpMiss !== rec.mispredicted) this.predictorDisagreements++;
    if (rec.mispredicted) {
      this.branchMispredicts++;
      this.squashYounger(rec.seq, inst.seq);
      this.fetch.redirect(done + this.redirectDelay);
    }
  }

  /**
   * Repairs predictor state of everything younger than a mispredicted branch. Fetch stops right
   * after a mispredicted branch (no wrong path), so this normally finds nothing; it keeps the
   * predictor contract (`squash` for every squashed prediction) should that change.
   */
  private squashYounger(uopSeq: number, instSeq: number): void {
    const rob = this.rob;
    for (let s = uopSeq + 1; s < rob.decodedSeq; s++) {
      const r = rob.at(s);
      if (r.isBranch && r.hasPrediction && r.inst !== null && r.inst.seq !== instSeq) {
        this.bpred.squash(r.bpHandle);
        this.squashedPredictions++;
      }
    }
    this.fetch.squashYounger(instSeq);
  }

  resetStats(): void {
    this.issuedOps = this.execLoads = this.execStores = this.execBranches = this.forwardedLoads = 0;
    this.memOrderWaits = this.loadRetries = this.branchMispredicts = this.predictorDisagreements = this.wbDelayed = this.squashedPredictions = 0;
  }
}

