/**
 * The detailed out-of-order CPU (gem5 O3CPU-style), cycle driven. It consumes the committed
 * instruction stream of the functional core (architectural results come from there; wrong-path
 * instructions are never fetched) and models time only.
 *
 * Each cycle runs the stages back to front — commit, IEW, rename, decode, fetch — so values
 * pass between stages only through the "ready at" cycles of the stage structs (a delay of 0
 * behaves as 1).
 */
import type { Stat } from '../../stats.js';
import { OP_CLASSES, type O3Params } from './params.js';
import type { O3BPredPort, O3MemPort } from './stageStructs.js';
import { ROB } from './rob.js';
import { InstQueue } from './instQueue.js';
import { LSQ } from './lsq.js';
import { FUPool } from './fuPool.js';
import { FetchStage, type FetchStream } from './fetch.js';
import { DecodeStage } from './decode.js';
import { RenameStage } from './rename.js';
import { IEWStage } from './iew.js';
import { CommitStage } from './commit.js';

export interface O3RunResult {
  /** Instructions committed by this call. */
  insts: number;
  /** µops committed by this call. */
  ops: number;
  /** Cycles simulated by this call. */
  cycles: number;
}

/** Cycles without a commit after which the model reports a deadlock (a model bug). */
const DEADLOCK_CYCLES = 1_000_000;

export class O3Cpu {
  readonly rob: ROB;
  readonly iq: InstQueue;
  readonly lsq: LSQ;
  readonly fuPool: FUPool;
  readonly fetchStage: FetchStage;
  readonly decodeStage: DecodeStage;
  readonly renameStage: RenameStage;
  readonly iewStage: IEWStage;
  readonly commitStage: CommitStage;
  /** Current cycle (absolute, never reset). */
  cycle = 0;
  private numCycles = 0;
  /** Cycles jumped over by skipIdleCycles (not a stat: a diagnostic). */
  skippedCycles = 0;
  /** Per-cycle stall counters scaled when idle cycles are skipped. */
  private readonly counterObjs: Record<string, number>[] = [];
  private readonly counterKeys: string[] = [];
  private readonly counterSnap: Float64Array;
  private readonly fuSnap: Float64Array;
  private readonly snapCounters: () => void;
  private readonly scaleCounters: (k: number) => void;

  constructor(readonly params: O3Params, private readonly stream: FetchStream, private readonly mem: O3MemPort, private readonly bpred: O3BPredPort) {
    const p = params;
    for (const k of ['fetchWidth', 'decodeWidth', 'renameWidth', 'dispatchWidth', 'issueWidth', 'wbWidth', 'commitWidth', 'numROBEntries', 'numIQEntries', 'LQEntries', 'SQEntries', 'fetchBufferBytes'] as const) {
      if (!(p[k] >= 1) || !Number.isInteger(p[k])) throw new Error(`o3: parameter ${k} must be a positive integer (got ${p[k]})`);
    }
    const decodeBuf = Math.max(p.decodeQueueSize, p.decodeWidth * (p.decodeToRenameDelay + 2));
    this.rob = new ROB(p.numROBEntries, decodeBuf);
    this.iq = new InstQueue(p.numIQEntries, this.rob);
    this.lsq = new LSQ(p.LQEntries, p.SQEntries, p.storeForwarding, p.storeForwardLatency);
    this.fuPool = new FUPool(p);
    this.fetchStage = new FetchStage(p, stream, mem, bpred);
    this.decodeStage = new DecodeStage(p, this.fetchStage, this.rob);
    this.renameStage = new RenameStage(p, this.rob, this.iq, this.lsq);
    this.iewStage = new IEWStage(p, this.rob, this.iq, this.lsq, this.fuPool, this.fetchStage, mem, bpred);
    this.commitStage = new CommitStage(p, this.rob, this.lsq, this.renameStage, this.fetchStage, mem);
    const add = (o: object, keys: string[]): void => {
      for (const k of keys) {
        if (typeof (o as Record<string, unknown>)[k] !== 'number') throw new Error(`o3: no counter ${k}`);
        this.counterObjs.push(o as Record<string, number>);
        this.counterKeys.push(k);
      }
    };
    add(this.fetchStage, ['squashCycles', 'icacheStallCycles', 'serializeStallCycles', 'queueFullCycles', 'activeCycles']);
    add(this.decodeStage, ['idleCycles', 'blockedCycles']);
    add(this.renameStage, ['idleCycles', 'runCycles', 'robFullEvents', 'iqFullEvents', 'lqFullEvents', 'sqFullEvents', 'intRegFullEvents', 'fpRegFullEvents', 'serializeStallCycles']);
    add(this.iewStage, ['memOrderWaits', 'wbDelayed']);
    add(this.commitStage, ['idleCycles', 'headBlockedCycles']);
    this.counterSnap = new Float64Array(this.counterObjs.length);
    // Straight-line snapshot / scale functions over the counters (named property accesses
    // instead of a megamorphic keyed loop; same arithmetic).
    const objIds: number[] = [];
    const uniq: object[] = [];
    for (const o of this.counterObjs) {
      let j = uniq.indexOf(o);
      if (j < 0) j = uniq.push(o) - 1;
      objIds.push(j);
    }
    let snapBody = '';
    let scaleBody = '';
    this.counterKeys.forEach((key, i) => {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new Error(`o3: bad counter name ${key}`);
      const o = `o[${objIds[i]}]`;
      snapBody += `snap[${i}] = ${o}.${key};\n`;
      scaleBody += `${o}.${key} = ${o}.${key} + (${o}.${key} - snap[${i}]) * k;\n`;
    });
    const snapFn = new Function('o', 'snap', snapBody) as (o: object[], snap: Float64Array) => void;
    const scaleFn = new Function('o', 'snap', 'k', scaleBody) as (o: object[], snap: Float64Array, k: number) => void;
    this.snapCounters = () => snapFn(uniq, this.counterSnap);
    this.scaleCounters = (k: number) => scaleFn(uniq, this.counterSnap, k);
    this.fuSnap = new Float64Array(this.fuPool.fuBusy.length);
  }

  /**
   * The stream is paused (the functional core stopped at an m5op: serializing, non-speculative)
   * and everything it handed out, the m5op included, has committed and written its stores. The
   * driver acts on the op and resumes the stream; the next `run` fetches on.
   */
  get drainedAtPause(): boolean {
    return this.stream.paused === true && this.done;
  }

  /** Nothing in flight and nothing more to fetch (for now, if the stream is paused). */
  get done(): boolean {
    return this.fetchStage.idle && this.rob.decodedSeq === this.rob.committedSeq && this.lsq.sqCount === 0;
  }

  /** Sum of the counters that change whenever any stage makes progress or retries memory. */
  private progress(): number {
    const f = this.fetchStage;
    const e = this.iewStage;
    const c = this.commitStage;
    return (
      f.fetchedInsts + f.icacheAccesses + f.icacheRetries + this.decodeStage.decodedOps + this.renameStage.renamedOps +
      e.issuedOps + e.loadRetries + c.committedOpsTotal + c.storeRetries + this.lsq.sqCount
    );
  }

  private stagesTick(now: number): void {
    this.commitStage.tick(now);
    this.iewStage.tick(now);
    this.renameStage.tick(now);
    this.decodeStage.tick(now);
    this.fetchStage.tick(now);
    this.cycle = now + 1;
    this.numCycles++;
  }

  /**
   * One cycle; with skipIdleCycles, after a cycle in which nothing moved, one more cycle is run to
   * measure the stall counters an idle cycle adds, and the cycles until the next event (all
   * identical) are jumped over with those counters scaled.
   */
  private tick(): void {
    const now = this.cycle;
    if (!this.params.skipIdleCycles) {
      this.stagesTick(now);
      return;
    }
    const before = this.progress();
    this.stagesTick(now);
    if (this.progress() !== before || this.fetchStage.streamEndedNow()) return;
    this.snapCounters();
    this.fuSnap.set(this.fuPool.fuBusy);
    const t1 = now + 1;
    this.stagesTick(t1);
    if (this.progress() !== before || this.fetchStage.streamEndedNow()) return;
    const next = this.nextEvent(t1);
    if (next === Infinity || next <= t1 + 1) return;
    const k = next - t1 - 1;
    this.scaleCounters(k);
    const fb = this.fuPool.fuBusy;
    for (let i = 0; i < fb.length; i++) fb[i] = fb[i]! + (fb[i]! - this.fuSnap[i]!) * k;
    this.cycle = next;
    this.numCycles += k;
    this.skippedCycles += k;
  }

  /** The earliest future cycle at which any stage could act. */
  private nextEvent(now: number): number {
    let t = this.fetchStage.nextEvent(now);
    const rob = this.rob;
    const i2c = this.params.iewToCommitDelay;
    for (let s = rob.committedSeq; s < rob.decodedSeq; s++) {
      const r = rob.at(s);
      if (r.readyAt > now && r.readyAt < t) t = r.readyAt;
      const d = r.doneCycle;
      if (d !== Infinity) {
        if (d > now && d < t) t = d;
        if (d + i2c > now && d + i2c < t) t = d + i2c;
      }
    }
    const fu = this.fuPool.nextFree(now);
    if (fu < t) t = fu;
    const w = this.lsq.nextWriteDone(now);
    if (w < t) t = w;
    return t;
  }

  /**
   * Simulates until `maxInsts` more instructions committed, or the stream ended (or paused at an
   * m5op: see `drainedAtPause`) and the pipeline emptied.
   */
  run(maxInsts = Infinity): O3RunResult {
    const c = this.commitStage;
    const i0 = c.committedInstsTotal;
    const o0 = c.committedOpsTotal;
    const cyc0 = this.cycle;
    c.limit = i0 + maxInsts;
    let lastOps = o0;
    let lastProgress = this.cycle;
    while (c.committedInstsTotal < c.limit && !this.done) {
      this.tick();
      if (c.committedOpsTotal !== lastOps) {
        lastOps = c.committedOpsTotal;
        lastProgress = this.cycle;
      } else if (this.cycle - lastProgress > DEADLOCK_CYCLES) {
        throw new Error(`o3: no commit for ${DEADLOCK_CYCLES} cycles at cycle ${this.cycle} (ROB ${this.rob.robCount}, IQ ${this.iq.count})`);
      }
    }
    c.limit = Infinity;
    return { insts: c.committedInstsTotal - i0, ops: c.committedOpsTotal - o0, cycles: this.cycle - cyc0 };
  }

  /**
   * Stops fetching new instructions and runs until everything in flight has committed and all
   * stores are written (for switching to another CPU model). Instructions already taken from the
   * stream are all committed, none is lost. `resume()` re-enables fetch.
   */
  drain(): O3RunResult {
    this.fetchStage.draining = true;
    return this.run();
  }

  resume(): void {
    this.fetchStage.draining = false;
  }

  get isDrained(): boolean {
    return this.fetchStage.draining && this.done;
  }

  resetStats(): void {
    this.numCycles = 0;
    this.fetchStage.resetStats();
    this.decodeStage.resetStats();
    this.renameStage.resetStats();
    this.iewStage.resetStats();
    this.commitStage.resetStats();
    this.fuPool.resetStats();
    this.mem.resetStats?.();
    this.bpred.resetStats?.();
  }

  /** gem5-style statistics under `system.cpu.` (plus those of the memory system and predictor, if they provide any). */
  stats(): Stat[] {
    const P = 'system.cpu.';
    const f = this.fetchStage;
    const d = this.decodeStage;
    const r = this.renameStage;
    const e = this.iewStage;
    const c = this.commitStage;
    const cyc = this.numCycles;
    const out: Stat[] = [
      { name: P + 'numCycles', value: cyc, desc: 'Number of cpu cycles simulated', unit: 'Cycle' },
      { name: P + 'committedInsts', value: c.committedInsts, desc: 'Number of instructions committed', unit: 'Count' },
      { name: P + 'committedOps', value: c.committedOps, desc: 'Number of ops (including micro ops) committed', unit: 'Count' },
      { name: P + 'ipc', value: cyc > 0 ? c.committedInsts / cyc : 0, desc: 'IPC: instructions per cycle', unit: 'Count/Cycle' },
      { name: P + 'cpi', value: c.committedInsts > 0 ? cyc / c.committedInsts : 0, desc: 'CPI: cycles per instruction', unit: 'Cycle/Count' },
      { name: P + 'fetch.insts', value: f.fetchedInsts, desc: 'Instructions fetched', unit: 'Count' },
      { name: P + 'fetch.branches', value: f.branches, desc: 'Branches fetched (and predicted)', unit: 'Count' },
      { name: P + 'fetch.predictedTaken', value: f.predictedTaken, desc: 'Branches predicted taken (correctly) that ended a fetch group', unit: 'Count' },
      { name: P + 'fetch.cycles', value: f.activeCycles, desc: 'Cycles fetch fetched at least one instruction', unit: 'Cycle' },
      { name: P + 'fetch.squashCycles', value: f.squashCycles, desc: 'Cycles fetch waited for a mispredicted branch to resolve and redirect', unit: 'Cycle' },
      { name: P + 'fetch.icacheAccesses', value: f.icacheAccesses, desc: 'Fetch-buffer fills (I-cache accesses)', unit: 'Count' },
      { name: P + 'fetch.icacheStallCycles', value: f.icacheStallCycles, desc: 'Cycles fetch waited for the I-cache', unit: 'Cycle' },
      { name: P + 'fetch.icacheRetries', value: f.icacheRetries, desc: 'I-cache accesses refused (retried)', unit: 'Count' },
      { name: P + 'fetch.serializeStallCycles', value: f.serializeStallCycles, desc: 'Cycles fetch was blocked behind a serializing instruction', unit: 'Cycle' },
      { name: P + 'fetch.queueFullCycles', value: f.queueFullCycles, desc: 'Cycles fetch stopped because the fetch queue was full', unit: 'Cycle' },
      { name: P + 'decode.decodedOps', value: d.decodedOps, desc: 'µops decoded', unit: 'Count' },
      { name: P + 'decode.idleCycles', value: d.idleCycles, desc: 'Cycles decode had nothing to decode', unit: 'Cycle' },
      { name: P + 'decode.blockedCycles', value: d.blockedCycles, desc: 'Cycles decode stopped because the decode→rename buffer was full', unit: 'Cycle' },
      { name: P + 'rename.renamedOps', value: r.renamedOps, desc: 'µops renamed and dispatched', unit: 'Count' },
      { name: P + 'rename.runCycles', value: r.runCycles, desc: 'Cycles rename renamed at least one µop', unit: 'Cycle' },
      { name: P + 'rename.idleCycles', value: r.idleCycles, desc: 'Cycles rename had nothing to rename', unit: 'Cycle' },
      { name: P + 'rename.robFullEvents', value: r.robFullEvents, desc: 'Cycles rename stalled because the ROB was full', unit: 'Cycle' },
      { name: P + 'rename.iqFullEvents', value: r.iqFullEvents, desc: 'Cycles rename stalled because the IQ was full', unit: 'Cycle' },
      { name: P + 'rename.lqFullEvents', value: r.lqFullEvents, desc: 'Cycles rename stalled because the LQ was full', unit: 'Cycle' },
      { name: P + 'rename.sqFullEvents', value: r.sqFullEvents, desc: 'Cycles rename stalled because the SQ was full', unit: 'Cycle' },
      { name: P + 'rename.intRegFullEvents', value: r.intRegFullEvents, desc: 'Cycles rename stalled for lack of integer physical registers', unit: 'Cycle' },
      { name: P + 'rename.fpRegFullEvents', value: r.fpRegFullEvents, desc: 'Cycles rename stalled for lack of FP physical registers', unit: 'Cycle' },
      { name: P + 'rename.serializeStallCycles', value: r.serializeStallCycles, desc: 'Cycles a serializing µop waited for the ROB to empty', unit: 'Cycle' },
      { name: P + 'iew.issuedOps', value: e.issuedOps, desc: 'µops issued', unit: 'Count' },
      { name: P + 'iew.execLoads', value: e.execLoads, desc: 'Loads executed', unit: 'Count' },
      { name: P + 'iew.execStores', value: e.execStores, desc: 'Stores executed (address and data)', unit: 'Count' },
      { name: P + 'iew.execBranches', value: e.execBranches, desc: 'Branches resolved', unit: 'Count' },
      { name: P + 'iew.forwardedLoads', value: e.forwardedLoads, desc: 'Loads satisfied by store-to-load forwarding', unit: 'Count' },
      { name: P + 'iew.memOrderWaits', value: e.memOrderWaits, desc: 'Issue attempts of loads waiting on an older overlapping store', unit: 'Count' },
      { name: P + 'iew.loadRetries', value: e.loadRetries, desc: 'Loads refused by the memory system (MSHRs full), retried', unit: 'Count' },
      { name: P + 'iew.branchMispredicts', value: e.branchMispredicts, desc: 'Mispredicted branches detected at execute', unit: 'Count' },
      { name: P + 'iew.predictorDisagreements', value: e.predictorDisagreements, desc: 'Branches where the predictor\'s resolve() disagreed with the fetch-time check', unit: 'Count' },
      { name: P + 'iew.squashedPredictions', value: e.squashedPredictions, desc: 'Predictions of instructions younger than a mispredicted branch handed back to the predictor (squash)', unit: 'Count' },
      { name: P + 'iew.wbDelayed', value: e.wbDelayed, desc: 'Cycles results were delayed by the writeback width', unit: 'Count' },
      { name: P + 'commit.committedOps', value: c.committedOps, desc: 'µops committed', unit: 'Count' },
      { name: P + 'commit.loads', value: c.loads, desc: 'Loads committed', unit: 'Count' },
      { name: P + 'commit.stores', value: c.stores, desc: 'Stores committed', unit: 'Count' },
      { name: P + 'commit.branches', value: c.branches, desc: 'Branches committed', unit: 'Count' },
      { name: P + 'commit.branchMispredicts', value: c.branchMispredicts, desc: 'Mispredicted branches committed', unit: 'Count' },
      { name: P + 'commit.serializing', value: c.serializing, desc: 'Serializing µops committed', unit: 'Count' },
      { name: P + 'commit.storeRetries', value: c.storeRetries, desc: 'Store writes refused by the memory system at commit, retried', unit: 'Count' },
      { name: P + 'commit.headBlockedCycles', value: c.headBlockedCycles, desc: 'Cycles the ROB head was not ready to commit', unit: 'Cycle' },
      { name: P + 'commit.idleCycles', value: c.idleCycles, desc: 'Cycles the ROB was empty', unit: 'Cycle' },
    ];
    OP_CLASSES.forEach((cls, i) => {
      if (this.fuPool.clsType[i]! >= 0) {
        out.push({ name: `${P}iew.fuBusy::${cls}`, value: this.fuPool.fuBusy[i]!, desc: `Times a ready ${cls} µop could not issue because its units were busy`, unit: 'Count' });
      }
    });
    if (this.bpred.stats) out.push(...this.bpred.stats());
    if (this.mem.stats) out.push(...this.mem.stats());
    return out;
  }
}
