/**
 * The front end's branch predictor unit (gem5 BPredUnit): a direction predictor, a BTB, a return
 * address stack and an indirect target predictor, built from one parameter object.
 *
 * Protocol with the pipeline (timing only; the functional core provides the truth):
 * - `predict(pc, kind, fallthrough)` at fetch. `kind` null = fetch does not know the instruction
 *   is a branch: it is predicted not taken unless the BTB knows the pc (BTB entries keep the kind).
 *   Every call returns a handle.
 * - `resolve(handle, actual)` when the branch executes (in any order): trains every structure and
 *   returns whether it was mispredicted (direction or target). On a misprediction the unit itself
 *   undoes the speculative state (global histories, RAS) of every younger handle, youngest first,
 *   then repairs it with the actual outcome; those younger handles become dead (later `squash` or
 *   `resolve` of them is a no-op returning false).
 * - `squash(handle)`: wrong-path recovery from elsewhere (e.g. a memory-order violation): undoes the
 *   handle and every younger one. Idempotent; any order.
 * A handle with kind null that missed in the BTB holds no speculative state; resolving it with a
 * branch (late discovery at decode/execute) trains the structures then (its history update lands
 * after younger predictions if it was correctly predicted not taken — an accepted approximation).
 * Only conditional branches enter the direction predictor's history; the indirect predictor's
 * history holds conditional outcomes and indirect targets.
 */
import type { Stat } from '../../../stats.js';
import { type BranchInfo, type BranchKind, type ParamSpec, type ParamValues, defaults } from '../types.js';
import { BTB } from './btb.js';
import {
  BimodalPredictor,
  type DirectionPredictor,
  type DirectionPredictorType,
  GsharePredictor,
  TagePredictor,
  TournamentPredictor,
} from './direction.js';
import { type IndirectHistory, type IndirectLookup, IndirectPredictor } from './indirect.js';
import { type RasCheckpoint, ReturnAddressStack } from './ras.js';

const num = (d: number, desc: string): ParamSpec<number> => ({ default: d, desc });
const bool = (d: boolean, desc: string): ParamSpec<boolean> => ({ default: d, desc });
const str = (d: string, desc: string): ParamSpec<string> => ({ default: d, desc });

export const BranchPredictorParamSpecs = {
  directionPredictor: str('tournament', "Direction predictor: 'bimodal' | 'gshare' | 'tournament' | 'tage'"),
  bimodalSize: num(2048, 'bimodal: number of counters (power of two)'),
  bimodalCtrBits: num(2, 'bimodal: bits per saturating counter'),
  gshareSize: num(4096, 'gshare: number of counters (power of two)'),
  gshareCtrBits: num(2, 'gshare: bits per saturating counter'),
  gshareHistoryBits: num(12, 'gshare: global history bits XORed with the pc'),
  localPredictorSize: num(2048, 'tournament: local predictor counters (power of two; local history bits = log2)'),
  localCtrBits: num(2, 'tournament: bits per local counter'),
  localHistoryTableSize: num(2048, 'tournament: per-pc local history registers (power of two)'),
  globalPredictorSize: num(8192, 'tournament: global predictor counters (power of two; history bits = log2)'),
  globalCtrBits: num(2, 'tournament: bits per global counter'),
  choicePredictorSize: num(8192, 'tournament: chooser counters (power of two)'),
  choiceCtrBits: num(2, 'tournament: bits per chooser counter'),
  tageNumTables: num(7, 'TAGE: number of tagged tables'),
  tageLogTableSize: num(10, 'TAGE: log2 entries per tagged table'),
  tageLogBaseSize: num(13, 'TAGE: log2 entries of the base bimodal table'),
  tageTagBits: num(11, 'TAGE: tag bits per tagged entry'),
  tageMinHistory: num(4, 'TAGE: shortest global history length (table 1)'),
  tageMaxHistory: num(128, 'TAGE: longest global history length (last table); geometric in between'),
  tageCtrBits: num(3, 'TAGE: bits per tagged prediction counter'),
  tageUBits: num(2, 'TAGE: bits per useful counter'),
  tageLogUResetPeriod: num(18, 'TAGE: log2 updates between halvings of the useful counters'),
  BTBEntries: num(4096, 'BTB entries (power of two)'),
  BTBAssoc: num(4, 'BTB associativity (power of two, LRU)'),
  BTBTagBits: num(16, 'BTB tag bits'),
  RASSize: num(16, 'Return address stack entries (circular)'),
  useIndirect: bool(true, 'Use the indirect target predictor (else indirect targets come from the BTB)'),
  indirectSets: num(256, 'Indirect predictor sets (power of two)'),
  indirectWays: num(2, 'Indirect predictor ways (LRU)'),
  indirectTagBits: num(16, 'Indirect predictor tag bits'),
  indirectGHRBits: num(13, 'Indirect predictor: conditional-outcome history bits hashed into the index'),
  indirectPathLength: num(3, 'Indirect predictor: previous indirect targets hashed into the index'),
};

export type BranchPredictorParams = ParamValues<typeof BranchPredictorParamSpecs>;

export function defaultBranchPredictorParams(): BranchPredictorParams {
  return defaults(BranchPredictorParamSpecs);
}

export function makeDirectionPredictor(prm: BranchPredictorParams): DirectionPredictor {
  const type = prm.directionPredictor as DirectionPredictorType;
  switch (type) {
    case 'bimodal':
      return new BimodalPredictor({ size: prm.bimodalSize, ctrBits: prm.bimodalCtrBits });
    case 'gshare':
      return new GsharePredictor({ size: prm.gshareSize, ctrBits: prm.gshareCtrBits, historyBits: prm.gshareHistoryBits });
    case 'tournament':
      return new TournamentPredictor({
        localPredictorSize: prm.localPredictorSize,
        localCtrBits: prm.localCtrBits,
        localHistoryTableSize: prm.localHistoryTableSize,
        globalPredictorSize: prm.globalPredictorSize,
        globalCtrBits: prm.globalCtrBits,
        choicePredictorSize: prm.choicePredictorSize,
        choiceCtrBits: prm.choiceCtrBits,
      });
    case 'tage':
      return new TagePredictor({
        logBaseSize: prm.tageLogBaseSize,
        numTables: prm.tageNumTables,
        logTableSize: prm.tageLogTableSize,
        tagBits: prm.tageTagBits,
        minHistory: prm.tageMinHistory,
        maxHistory: prm.tageMaxHistory,
        ctrBits: prm.tageCtrBits,
        uBits: prm.tageUBits,
        logUResetPeriod: prm.tageLogUResetPeriod,
      });
    default:
      throw new RangeError(`unknown directionPredictor '${String(type)}'`);
  }
}

const KINDS: readonly BranchKind[] = ['cond', 'uncond', 'call', 'ret', 'indirect', 'indirectCall'];

/** What the unit remembers about one prediction. Opaque to the pipeline. */
export class BranchHandle {
  /** 'live' until resolved or squashed. */
  status: 'live' | 'resolved' | 'squashed' = 'live';
  dirState: unknown = undefined;
  dirTaken = false;
  ras: RasCheckpoint | null = null;
  rasTarget: number | null = null;
  ind: IndirectLookup | null = null;
  /** Indirect-predictor history before this branch pushed into it (only if it pushed). */
  indSnap: IndirectHistory | null = null;
  constructor(
    readonly id: number,
    readonly pc: number,
    /** Kind used at predict time (given, or from the BTB); null: predicted as a non-branch. */
    readonly kind: BranchKind | null,
    readonly fallthrough: number,
    public predTaken: boolean,
    public predTarget: number,
  ) {}
}

export class BranchPredictorUnit {
  readonly params: BranchPredictorParams;
  readonly dir: DirectionPredictor;
  readonly btb: BTB;
  readonly ras: ReturnAddressStack;
  readonly indirect: IndirectPredictor | null;
  /** Handles with speculative state, in predict order (resolved ones kept until older ones end). */
  private inflight: BranchHandle[] = [];
  private nextId = 0;
  private s = BranchPredictorUnit.zeroStats();

  constructor(params: Partial<BranchPredictorParams> = {}) {
    this.params = { ...defaultBranchPredictorParams(), ...params };
    const prm = this.params;
    this.dir = makeDirectionPredictor(prm);
    this.btb = new BTB({ entries: prm.BTBEntries, assoc: prm.BTBAssoc, tagBits: prm.BTBTagBits });
    this.ras = new ReturnAddressStack(prm.RASSize);
    this.indirect = prm.useIndirect
      ? new IndirectPredictor({
          sets: prm.indirectSets,
          ways: prm.indirectWays,
          tagBits: prm.indirectTagBits,
          ghrBits: prm.indirectGHRBits,
          pathLength: prm.indirectPathLength,
        })
      : null;
  }

  private static zeroStats() {
    const perKind = (): Record<BranchKind, number> => ({ cond: 0, uncond: 0, call: 0, ret: 0, indirect: 0, indirectCall: 0 });
    return {
      lookups: 0,
      condPredicted: 0,
      condPredictedTaken: 0,
      condIncorrect: 0,
      RASUsed: 0,
      RASIncorrect: 0,
      indirectLookups: 0,
      indirectHits: 0,
      indirectMisses: 0,
      indirectMispredicted: 0,
      resolved: perKind(),
      mispredicted: perKind(),
      nonBranchMispredicted: 0,
    };
  }

  predict(pc: number, kind: BranchKind | null, fallthrough: number): { taken: boolean; target: number; handle: BranchHandle } {
    const id = this.nextId++;
    const entry = this.btb.lookup(pc);
    const k = kind ?? entry?.kind ?? null;
    const h = new BranchHandle(id, pc, k, fallthrough, false, fallthrough);
    if (k === null) return { taken: false, target: fallthrough, handle: h };
    this.s.lookups++;
    this.predictKnown(h, k, entry?.target ?? null);
    this.inflight.push(h);
    return { taken: h.predTaken, target: h.predTarget, handle: h };
  }

  /** Predicts a branch of known kind; `btbTarget` null on a BTB miss. */
  private predictKnown(h: BranchHandle, k: BranchKind, btbTarget: number | null): void {
    switch (k) {
      case 'cond': {
        this.s.condPredicted++;
        const d = this.dir.predict(h.pc);
        h.dirState = d.state;
        h.dirTaken = d.taken;
        if (this.indirect) {
          h.indSnap = this.indirect.snapshot();
          this.indirect.pushCond(d.taken);
        }
        // Predicted taken without a target cannot redirect fetch: falls through (gem5 does so).
        h.predTaken = d.taken && btbTarget !== null;
        if (h.predTaken) this.s.condPredictedTaken++;
        h.predTarget = h.predTaken ? btbTarget! : h.fallthrough;
        return;
      }
      case 'uncond':
      case 'call':
        h.predTaken = btbTarget !== null;
        h.predTarget = btbTarget ?? h.fallthrough;
        if (k === 'call') h.ras = this.ras.push(h.fallthrough);
        return;
      case 'ret': {
        this.s.RASUsed++;
        const r = this.ras.pop();
        h.ras = r.checkpoint;
        h.rasTarget = r.target;
        h.predTaken = true;
        h.predTarget = r.target;
        return;
      }
      case 'indirect':
      case 'indirectCall': {
        let target = btbTarget;
        if (this.indirect) {
          this.s.indirectLookups++;
          const l = this.indirect.lookup(h.pc);
          h.ind = l;
          if (l.target !== null) {
            this.s.indirectHits++;
            target = l.target;
          } else this.s.indirectMisses++;
          h.indSnap = this.indirect.snapshot();
          this.indirect.pushTarget(target ?? h.fallthrough);
        }
        h.predTaken = target !== null;
        h.predTarget = target ?? h.fallthrough;
        if (k === 'indirectCall') h.ras = this.ras.push(h.fallthrough);
        return;
      }
    }
  }

  /**
   * The branch executed: `actual` is its outcome (null: the instruction is not a branch, e.g. a
   * BTB alias). Returns whether fetch was mispredicted (direction or target).
   */
  resolve(handle: unknown, actual: BranchInfo | null): boolean {
    const h = asHandle(handle);
    if (h.status !== 'live') return false;
    const actTaken = actual !== null && actual.taken;
    const actNext = actTaken ? actual.target : h.fallthrough;
    const predNext = h.predTaken ? h.predTarget : h.fallthrough;
    const mispredicted = actNext !== predNext || actTaken !== h.predTaken;
    if (mispredicted) this.squashYounger(h);
    h.status = 'resolved';

    if (actual === null) {
      // Not a branch: undo whatever it did speculatively (when nothing younger depends on it).
      if (this.isYoungest(h)) this.undo(h, true);
      if (h.kind !== null) this.btb.invalidate(h.pc);
      if (mispredicted) this.s.nonBranchMispredicted++;
      this.prune();
      return mispredicted;
    }
    const kind = actual.kind;
    this.s.resolved[kind]++;
    if (mispredicted) this.s.mispredicted[kind]++;

    if (h.kind !== kind && (h.kind === null || this.isYoungest(h))) {
      // Late discovery (or the BTB had another kind): redo the speculative part with the real kind.
      if (h.kind !== null) this.undo(h, true);
      else this.s.lookups++;
      const pt = h.predTaken;
      const ptg = h.predTarget;
      this.predictKnown(h, kind, null);
      h.predTaken = pt;
      h.predTarget = ptg;
    }

    switch (kind) {
      case 'cond':
        if (mispredicted) this.s.condIncorrect++;
        if (h.dirState === undefined) {
          // The BTB called it another kind and younger predictions exist: train from a fresh lookup.
          const d = this.dir.predict(h.pc);
          h.dirState = d.state;
          h.dirTaken = d.taken;
        }
        this.dir.update(h.pc, actual.taken, h.dirState);
        if (this.indirect && h.indSnap && actual.taken !== h.dirTaken) {
          this.indirect.restore(h.indSnap);
          this.indirect.pushCond(actual.taken);
        }
        break;
      case 'ret':
        if (h.rasTarget !== actual.target) this.s.RASIncorrect++;
        break;
      case 'indirect':
      case 'indirectCall':
        if (this.indirect && h.ind) {
          if (mispredicted) this.s.indirectMispredicted++;
          this.indirect.update(h.ind, actual.target);
          if (h.indSnap && h.predTarget !== actual.target) {
            this.indirect.restore(h.indSnap);
            this.indirect.pushTarget(actual.target);
          }
        }
        break;
      default:
        break;
    }
    if (actual.taken) this.btb.update(h.pc, actual.target, kind);
    this.prune();
    return mispredicted;
  }

  /** Wrong-path recovery: undoes `handle` and every younger prediction. Idempotent. */
  squash(handle: unknown): void {
    const h = asHandle(handle);
    if (h.status !== 'live') return;
    this.squashFrom(h.id);
  }

  /** Predict + resolve in one step (functional warming by the atomic CPU). */
  warm(pc: number, fallthrough: number, actual: BranchInfo): boolean {
    const { handle } = this.predict(pc, actual.kind, fallthrough);
    return this.resolve(handle, actual);
  }

  private squashYounger(h: BranchHandle): void {
    this.squashFrom(h.id + 1);
  }

  /** Undoes every in-flight handle with id ≥ `id`, youngest first; restores the histories to
   * what they were before the oldest of them. */
  private squashFrom(id: number): void {
    let oldestInd: IndirectHistory | null = null;
    let i = this.inflight.length - 1;
    for (; i >= 0; i--) {
      const x = this.inflight[i]!;
      if (x.id < id) break;
      if (x.ras) this.ras.restore(x.ras);
      x.ras = null;
      // Youngest first: per-branch state (tournament local histories) unwinds exactly, and the
      // global history ends at the oldest squashed snapshot.
      if (x.dirState !== undefined) this.dir.squash?.(x.dirState);
      if (x.indSnap) oldestInd = x.indSnap;
      if (x.status === 'live') x.status = 'squashed';
    }
    this.inflight.length = i + 1;
    if (oldestInd && this.indirect) this.indirect.restore(oldestInd);
  }

  /** Undoes one handle's own speculative state (it must be the youngest in flight). */
  private undo(h: BranchHandle, forget: boolean): void {
    if (h.ras) this.ras.restore(h.ras);
    if (h.dirState !== undefined) this.dir.squash?.(h.dirState);
    if (h.indSnap && this.indirect) this.indirect.restore(h.indSnap);
    if (forget) {
      h.ras = null;
      h.dirState = undefined;
      h.indSnap = null;
      h.ind = null;
      h.rasTarget = null;
    }
  }

  private isYoungest(h: BranchHandle): boolean {
    return this.inflight[this.inflight.length - 1] === h;
  }

  private prune(): void {
    let n = 0;
    while (n < this.inflight.length && this.inflight[n]!.status !== 'live') n++;
    if (n > 0) this.inflight.splice(0, n);
  }

  /** Number of handles still holding speculative state (for tests and leak checks). */
  get inflightCount(): number {
    return this.inflight.length;
  }

  resetStats(): void {
    this.s = BranchPredictorUnit.zeroStats();
    this.btb.resetStats();
  }

  stats(prefix = 'system.cpu.branchPred.'): Stat[] {
    const s = this.s;
    const out: Stat[] = [
      { name: 'lookups', value: s.lookups, desc: 'Number of branch predictor lookups (known branches)' },
      { name: 'condPredicted', value: s.condPredicted, desc: 'Number of conditional branches predicted' },
      { name: 'condPredictedTaken', value: s.condPredictedTaken, desc: 'Number of conditional branches predicted taken' },
      { name: 'condIncorrect', value: s.condIncorrect, desc: 'Number of conditional branches mispredicted' },
      { name: 'BTBLookups', value: this.btb.lookups, desc: 'Number of BTB lookups' },
      { name: 'BTBHits', value: this.btb.hits, desc: 'Number of BTB hits' },
      { name: 'BTBMisses', value: this.btb.misses, desc: 'Number of BTB misses' },
      {
        name: 'BTBHitRatio',
        value: this.btb.lookups ? this.btb.hits / this.btb.lookups : 0,
        desc: 'BTB hit ratio',
        unit: 'ratio',
      },
      { name: 'RASUsed', value: s.RASUsed, desc: 'Number of times the RAS was used to get a target' },
      { name: 'RASIncorrect', value: s.RASIncorrect, desc: 'Number of incorrect RAS predictions' },
      { name: 'indirectLookups', value: s.indirectLookups, desc: 'Number of indirect predictor lookups' },
      { name: 'indirectHits', value: s.indirectHits, desc: 'Number of indirect target hits' },
      { name: 'indirectMisses', value: s.indirectMisses, desc: 'Number of indirect target misses' },
      { name: 'indirectMispredicted', value: s.indirectMispredicted, desc: 'Number of mispredicted indirect branches' },
    ];
    for (const k of KINDS) {
      out.push({ name: `branches::${k}`, value: s.resolved[k], desc: `Number of resolved ${k} branches` });
    }
    for (const k of KINDS) {
      out.push({ name: `mispredicted::${k}`, value: s.mispredicted[k], desc: `Number of mispredicted ${k} branches` });
    }
    out.push({
      name: 'mispredicted::nonBranch',
      value: s.nonBranchMispredicted,
      desc: 'Number of non-branches predicted taken (BTB aliasing)',
    });
    return out.map((x) => ({ ...x, name: prefix + x.name }));
  }
}

function asHandle(h: unknown): BranchHandle {
  if (!(h instanceof BranchHandle)) throw new TypeError('not a BranchPredictorUnit handle');
  return h;
}
