/**
 * Conditional-branch direction predictors behind one interface (gem5's BPredUnit subclasses):
 * bimodal (LocalBP), gshare, tournament (Alpha 21264 / TournamentBP) and a TAGE-style predictor.
 *
 * Speculative history policy (all predictors with history):
 * - `predict` pushes the *predicted* direction into the global (and local) history at once, so
 *   younger branches in flight see it; the returned `state` holds the indices used and a snapshot
 *   of the histories from *before* the push.
 * - `update(pc, taken, state)` (at resolve) trains the tables at the indices of `state`; if the
 *   prediction was wrong it repairs the histories to `snapshot + actual outcome`. This assumes the
 *   younger branches have been squashed (always true after a misprediction).
 * - `squash(state)` restores the histories to the snapshot (undoes this branch and every younger
 *   one). Several squashes must go youngest first (per-pc local histories unwind one by one);
 *   `BranchPredictorUnit` does the ordering, so the pipeline may squash its handles in any order.
 */
import { pcHash, pcLow, requirePow2, satUpdate } from './util.js';

export interface DirectionPredictor {
  readonly name: string;
  predict(pc: number): { taken: boolean; state: unknown };
  update(pc: number, taken: boolean, state: unknown): void;
  squash?(state: unknown): void;
}

// ---------------------------------------------------------------- bimodal

export interface BimodalParams {
  /** Number of 2-bit (ctrBits) counters. */
  size: number;
  ctrBits: number;
}

interface BimodalState {
  idx: number;
  taken: boolean;
}

/** A table of saturating counters indexed by pc (gem5 LocalBP). No history. */
export class BimodalPredictor implements DirectionPredictor {
  readonly name = 'bimodal';
  private readonly table: Uint8Array;
  private readonly mask: number;
  private readonly max: number;
  private readonly half: number;

  constructor(p: BimodalParams) {
    requirePow2('bimodal size', p.size);
    this.table = new Uint8Array(p.size);
    this.mask = p.size - 1;
    this.max = (1 << p.ctrBits) - 1;
    this.half = 1 << (p.ctrBits - 1);
    // Weakly not-taken, like gem5.
    this.table.fill(this.half - 1);
  }

  predict(pc: number): { taken: boolean; state: BimodalState } {
    const idx = pcLow(pc) & this.mask;
    const taken = this.table[idx]! >= this.half;
    return { taken, state: { idx, taken } };
  }

  update(_pc: number, taken: boolean, state: unknown): void {
    const s = state as BimodalState;
    this.table[s.idx] = satUpdate(this.table[s.idx]!, taken, this.max);
  }
}

// ---------------------------------------------------------------- gshare

export interface GshareParams {
  size: number;
  ctrBits: number;
  /** Global history bits XORed with the pc (≤ log2(size)). */
  historyBits: number;
}

interface GshareState {
  idx: number;
  ghr: number;
  taken: boolean;
}

/** Counters indexed by pc XOR global history (McFarling). */
export class GsharePredictor implements DirectionPredictor {
  readonly name = 'gshare';
  private readonly table: Uint8Array;
  private readonly mask: number;
  private readonly histMask: number;
  private readonly max: number;
  private readonly half: number;
  private ghr = 0;

  constructor(p: GshareParams) {
    requirePow2('gshare size', p.size);
    if (p.historyBits < 0 || p.historyBits > 30) throw new RangeError('gshare historyBits must be in [0, 30]');
    this.table = new Uint8Array(p.size);
    this.mask = p.size - 1;
    this.histMask = p.historyBits === 0 ? 0 : (1 << p.historyBits) - 1;
    this.max = (1 << p.ctrBits) - 1;
    this.half = 1 << (p.ctrBits - 1);
    this.table.fill(this.half - 1);
  }

  predict(pc: number): { taken: boolean; state: GshareState } {
    const ghr = this.ghr;
    const idx = (pcLow(pc) ^ ghr) & this.mask;
    const taken = this.table[idx]! >= this.half;
    this.ghr = ((ghr << 1) | (taken ? 1 : 0)) & this.histMask;
    return { taken, state: { idx, ghr, taken } };
  }

  update(_pc: number, taken: boolean, state: unknown): void {
    const s = state as GshareState;
    this.table[s.idx] = satUpdate(this.table[s.idx]!, taken, this.max);
    if (taken !== s.taken) this.ghr = ((s.ghr << 1) | (taken ? 1 : 0)) & this.histMask;
  }

  squash(state: unknown): void {
    this.ghr = (state as GshareState).ghr;
  }
}

// ---------------------------------------------------------------- tournament

export interface TournamentParams {
  localPredictorSize: number;
  localCtrBits: number;
  localHistoryTableSize: number;
  globalPredictorSize: number;
  globalCtrBits: number;
  choicePredictorSize: number;
  choiceCtrBits: number;
}

interface TournamentState {
  lhIdx: number;
  lh: number;
  ghr: number;
  localTaken: boolean;
  globalTaken: boolean;
  taken: boolean;
}

/**
 * Alpha 21264-style tournament (gem5 TournamentBP): a local predictor indexed by per-pc history,
 * a global predictor indexed by global history, and a chooser indexed by global history.
 */
export class TournamentPredictor implements DirectionPredictor {
  readonly name = 'tournament';
  private readonly local: Uint8Array;
  private readonly global: Uint8Array;
  private readonly choice: Uint8Array;
  private readonly lht: Uint32Array;
  private readonly localMask: number;
  private readonly lhtMask: number;
  private readonly globalMask: number;
  private readonly choiceMask: number;
  private readonly ghrMask: number;
  private readonly localMax: number;
  private readonly globalMax: number;
  private readonly choiceMax: number;
  private ghr = 0;

  constructor(p: TournamentParams) {
    requirePow2('localPredictorSize', p.localPredictorSize);
    requirePow2('localHistoryTableSize', p.localHistoryTableSize);
    requirePow2('globalPredictorSize', p.globalPredictorSize);
    requirePow2('choicePredictorSize', p.choicePredictorSize);
    this.local = new Uint8Array(p.localPredictorSize);
    this.global = new Uint8Array(p.globalPredictorSize);
    this.choice = new Uint8Array(p.choicePredictorSize);
    this.lht = new Uint32Array(p.localHistoryTableSize);
    this.localMask = p.localPredictorSize - 1;
    this.lhtMask = p.localHistoryTableSize - 1;
    this.globalMask = p.globalPredictorSize - 1;
    this.choiceMask = p.choicePredictorSize - 1;
    this.ghrMask = Math.max(this.globalMask, this.choiceMask);
    this.localMax = (1 << p.localCtrBits) - 1;
    this.globalMax = (1 << p.globalCtrBits) - 1;
    this.choiceMax = (1 << p.choiceCtrBits) - 1;
    this.local.fill(this.localMax >> 1);
    this.global.fill(this.globalMax >> 1);
    // Chooser starts weakly preferring the global predictor (gem5: weakly global).
    this.choice.fill((this.choiceMax >> 1) + 1);
  }

  predict(pc: number): { taken: boolean; state: TournamentState } {
    const lhIdx = pcLow(pc) & this.lhtMask;
    const lh = this.lht[lhIdx]!;
    const ghr = this.ghr;
    const localTaken = this.local[lh & this.localMask]! > this.localMax >> 1;
    const globalTaken = this.global[ghr & this.globalMask]! > this.globalMax >> 1;
    const useGlobal = this.choice[ghr & this.choiceMask]! > this.choiceMax >> 1;
    const taken = useGlobal ? globalTaken : localTaken;
    const bit = taken ? 1 : 0;
    this.ghr = ((ghr << 1) | bit) & this.ghrMask;
    this.lht[lhIdx] = ((lh << 1) | bit) & this.localMask;
    return { taken, state: { lhIdx, lh, ghr, localTaken, globalTaken, taken } };
  }

  update(_pc: number, taken: boolean, state: unknown): void {
    const s = state as TournamentState;
    const li = s.lh & this.localMask;
    const gi = s.ghr & this.globalMask;
    const ci = s.ghr & this.choiceMask;
    if (s.localTaken !== s.globalTaken) {
      this.choice[ci] = satUpdate(this.choice[ci]!, s.globalTaken === taken, this.choiceMax);
    }
    this.local[li] = satUpdate(this.local[li]!, taken, this.localMax);
    this.global[gi] = satUpdate(this.global[gi]!, taken, this.globalMax);
    if (taken !== s.taken) {
      const bit = taken ? 1 : 0;
      this.ghr = ((s.ghr << 1) | bit) & this.ghrMask;
      this.lht[s.lhIdx] = ((s.lh << 1) | bit) & this.localMask;
    }
  }

  squash(state: unknown): void {
    const s = state as TournamentState;
    this.ghr = s.ghr;
    this.lht[s.lhIdx] = s.lh;
  }
}

// ---------------------------------------------------------------- TAGE

export interface TageParams {
  /** log2 entries of the base bimodal table. */
  logBaseSize: number;
  /** Number of tagged tables. */
  numTables: number;
  /** log2 entries of each tagged table. */
  logTableSize: number;
  tagBits: number;
  /** Shortest and longest global history lengths (geometric series in between). */
  minHistory: number;
  maxHistory: number;
  ctrBits: number;
  uBits: number;
  /** log2 of the number of updates between halvings of all useful counters. */
  logUResetPeriod: number;
}

/** Compressed (folded) history of `origLen` bits into `compLen` bits (Seznec's CSR). */
interface Folded {
  origLen: number;
  compLen: number;
  outPoint: number;
}

interface TageState {
  ptr: number;
  folded: number[];
  baseIdx: number;
  idx: number[];
  tag: number[];
  /** Table of the provider (−1: base) and of the alternate (−1: base). */
  provider: number;
  alt: number;
  providerTaken: boolean;
  altTaken: boolean;
  taken: boolean;
}

const HIST_BUF = 4096;

/**
 * TAGE (Seznec & Michaud): a base bimodal table and `numTables` tagged tables indexed with
 * geometrically growing global-history lengths. The longest matching table provides the
 * prediction; a newly allocated (weak) provider defers to the alternate when USE_ALT_ON_NA says
 * so; on a misprediction one entry is allocated in a longer table whose useful counter is zero;
 * useful counters are aged periodically.
 */
export class TagePredictor implements DirectionPredictor {
  readonly name = 'tage';
  readonly historyLengths: readonly number[];
  private readonly base: Uint8Array;
  private readonly ctr: Uint8Array[];
  private readonly tags: Int32Array[];
  private readonly useful: Uint8Array[];
  private readonly baseMask: number;
  private readonly tableMask: number;
  private readonly tagMask: number;
  private readonly ctrMax: number;
  private readonly ctrHalf: number;
  private readonly uMax: number;
  private readonly n: number;
  private readonly logSize: number;
  /** Per table: index fold, tag fold 0, tag fold 1. */
  private readonly folds: Folded[];
  private folded: number[];
  private readonly hist = new Uint8Array(HIST_BUF);
  private ptr = 0;
  private useAltOnNa = 8;
  private tick = 0;
  private readonly resetPeriod: number;
  private rng = 0x2545f491;

  constructor(p: TageParams) {
    if (p.numTables < 1 || p.numTables > 16) throw new RangeError('tage numTables must be in [1, 16]');
    if (p.maxHistory >= HIST_BUF / 2) throw new RangeError(`tage maxHistory must be < ${HIST_BUF / 2}`);
    if (p.minHistory < 1 || p.maxHistory < p.minHistory) throw new RangeError('tage needs 1 ≤ minHistory ≤ maxHistory');
    if (p.tagBits < 2 || p.tagBits > 24) throw new RangeError('tage tagBits must be in [2, 24]');
    this.n = p.numTables;
    this.logSize = p.logTableSize;
    const lens: number[] = [];
    for (let i = 0; i < p.numTables; i++) {
      const r = p.numTables === 1 ? 0 : i / (p.numTables - 1);
      lens.push(Math.round(p.minHistory * Math.pow(p.maxHistory / p.minHistory, r)));
    }
    this.historyLengths = lens;
    this.base = new Uint8Array(1 << p.logBaseSize);
    this.baseMask = (1 << p.logBaseSize) - 1;
    this.base.fill(1); // 2-bit base, weakly not-taken
    this.ctr = lens.map(() => new Uint8Array(1 << p.logTableSize));
    this.tags = lens.map(() => new Int32Array(1 << p.logTableSize).fill(-1));
    this.useful = lens.map(() => new Uint8Array(1 << p.logTableSize));
    this.tableMask = (1 << p.logTableSize) - 1;
    this.tagMask = (1 << p.tagBits) - 1;
    this.ctrMax = (1 << p.ctrBits) - 1;
    this.ctrHalf = 1 << (p.ctrBits - 1);
    this.uMax = (1 << p.uBits) - 1;
    this.resetPeriod = 2 ** p.logUResetPeriod;
    this.folds = [];
    for (const L of lens) {
      for (const w of [p.logTableSize, p.tagBits, p.tagBits - 1]) {
        this.folds.push({ origLen: L, compLen: w, outPoint: L % w });
      }
    }
    this.folded = new Array<number>(this.folds.length).fill(0);
  }

  private push(taken: boolean): void {
    const bit = taken ? 1 : 0;
    this.hist[this.ptr & (HIST_BUF - 1)] = bit;
    this.ptr++;
    const f = this.folded;
    for (let k = 0; k < this.folds.length; k++) {
      const fd = this.folds[k]!;
      const old = this.hist[(this.ptr - 1 - fd.origLen) & (HIST_BUF - 1)]!;
      let c = (f[k]! << 1) | bit;
      c ^= old << fd.outPoint;
      c ^= c >>> fd.compLen;
      f[k] = c & ((1 << fd.compLen) - 1);
    }
  }

  private restore(s: TageState): void {
    this.ptr = s.ptr;
    this.folded = s.folded.slice();
  }

  predict(pc: number): { taken: boolean; state: TageState } {
    const lo = pcLow(pc);
    const h = pcHash(pc);
    const baseIdx = lo & this.baseMask;
    // Plain arrays: much cheaper to allocate than typed arrays on this hot path.
    const idx: number[] = [];
    const tag: number[] = [];
    let provider = -1;
    let alt = -1;
    for (let i = 0; i < this.n; i++) {
      const f0 = this.folded[3 * i]!;
      const f1 = this.folded[3 * i + 1]!;
      const f2 = this.folded[3 * i + 2]!;
      idx.push((lo ^ (lo >>> (Math.abs(this.logSize - i) + 1)) ^ f0) & this.tableMask);
      tag.push((h ^ (h >>> 16) ^ f1 ^ (f2 << 1)) & this.tagMask);
    }
    for (let i = this.n - 1; i >= 0; i--) {
      if (this.tags[i]![idx[i]!] === tag[i]) {
        if (provider < 0) provider = i;
        else {
          alt = i;
          break;
        }
      }
    }
    const baseTaken = this.base[baseIdx]! >= 2;
    const altTaken = alt >= 0 ? this.ctr[alt]![idx[alt]!]! >= this.ctrHalf : baseTaken;
    let providerTaken = altTaken;
    let taken = altTaken;
    if (provider >= 0) {
      const c = this.ctr[provider]![idx[provider]!]!;
      providerTaken = c >= this.ctrHalf;
      const weak = c === this.ctrHalf || c === this.ctrHalf - 1;
      const fresh = weak && this.useful[provider]![idx[provider]!] === 0;
      taken = fresh && this.useAltOnNa >= 8 ? altTaken : providerTaken;
    }
    const state: TageState = {
      ptr: this.ptr,
      folded: this.folded.slice(),
      baseIdx,
      idx,
      tag,
      provider,
      alt,
      providerTaken,
      altTaken,
      taken,
    };
    this.push(taken);
    return { taken, state };
  }

  private random(): number {
    // xorshift32, deterministic so runs are reproducible.
    let x = this.rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.rng = x >>> 0;
    return this.rng;
  }

  update(_pc: number, taken: boolean, state: unknown): void {
    const s = state as TageState;
    const p = s.provider;
    const live = (i: number): boolean => this.tags[i]![s.idx[i]!] === s.tag[i];
    if (p >= 0 && live(p)) {
      const pi = s.idx[p]!;
      const c = this.ctr[p]![pi]!;
      const weak = c === this.ctrHalf || c === this.ctrHalf - 1;
      if (weak && this.useful[p]![pi] === 0 && s.providerTaken !== s.altTaken) {
        this.useAltOnNa = satUpdate(this.useAltOnNa, s.altTaken === taken, 15);
      }
    }
    // Allocate on a misprediction in a longer table with a zero useful counter.
    if (s.taken !== taken && p < this.n - 1) {
      const free: number[] = [];
      for (let i = p + 1; i < this.n; i++) if (this.useful[i]![s.idx[i]!] === 0) free.push(i);
      if (free.length === 0) {
        for (let i = p + 1; i < this.n; i++) {
          const u = this.useful[i]!;
          const j = s.idx[i]!;
          if (u[j]! > 0) u[j] = u[j]! - 1;
        }
      } else {
        // Prefer the shortest free table, sometimes the next one (Seznec's randomisation).
        const pick = free.length > 1 && (this.random() & 3) === 0 ? free[1]! : free[0]!;
        const j = s.idx[pick]!;
        this.tags[pick]![j] = s.tag[pick]!;
        this.ctr[pick]![j] = taken ? this.ctrHalf : this.ctrHalf - 1;
        this.useful[pick]![j] = 0;
      }
    }
    if (p >= 0 && live(p)) {
      const pi = s.idx[p]!;
      const pc = this.ctr[p]!;
      const wasUseless = this.useful[p]![pi] === 0;
      pc[pi] = satUpdate(pc[pi]!, taken, this.ctrMax);
      if (wasUseless) this.updateAlt(s, taken);
      if (s.providerTaken !== s.altTaken) {
        this.useful[p]![pi] = satUpdate(this.useful[p]![pi]!, s.providerTaken === taken, this.uMax);
      }
    } else {
      this.base[s.baseIdx] = satUpdate(this.base[s.baseIdx]!, taken, 3);
    }
    if (++this.tick % this.resetPeriod === 0) {
      for (const u of this.useful) for (let j = 0; j < u.length; j++) u[j] = u[j]! >> 1;
    }
    if (taken !== s.taken) {
      this.restore(s);
      this.push(taken);
    }
  }

  private updateAlt(s: TageState, taken: boolean): void {
    if (s.alt >= 0) {
      if (this.tags[s.alt]![s.idx[s.alt]!] === s.tag[s.alt]) {
        const t = this.ctr[s.alt]!;
        const j = s.idx[s.alt]!;
        t[j] = satUpdate(t[j]!, taken, this.ctrMax);
      }
    } else {
      this.base[s.baseIdx] = satUpdate(this.base[s.baseIdx]!, taken, 3);
    }
  }

  squash(state: unknown): void {
    this.restore(state as TageState);
  }
}

/** Which direction predictor a `BranchPredictorUnit` builds. */
export type DirectionPredictorType = 'bimodal' | 'gshare' | 'tournament' | 'tage';
