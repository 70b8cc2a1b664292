/**
 * Fetch stage. Pulls up to `fetchWidth` instructions per cycle from the committed-path
 * `InstStream` into the fetch queue. Each new `fetchBufferBytes`-aligned block costs one I-cache
 * access (`mem.fetch`); fetch waits for it (and retries when the I-cache cannot accept).
 * Every branch is predicted; a predicted-taken branch ends the fetch group. Wrong-path
 * instructions are never fetched: when the prediction differs from the actual next rip, fetch
 * stops after the branch until IEW resolves it and redirects (`redirect`) — the misprediction
 * penalty is the front-end depth plus the resolution time plus the redirect delay. A serializing
 * instruction stops fetch until it commits.
 */
import type { O3Params } from './params.js';
import { FetchSlot, SlotRing, type O3BPredPort, type O3MemPort } from './stageStructs.js';
import type { DynInst, InstStream } from './types.js';

/**
 * The instruction source fetch pulls from. `paused`: no instruction for now but the stream has
 * not ended (the functional core stopped at an m5op until the driver takes it); fetch goes idle
 * and asks again once the pause is over.
 */
export interface FetchStream extends InstStream {
  readonly paused?: boolean;
}

export class FetchStage {
  readonly queue: SlotRing<FetchSlot>;
  private lookahead: DynInst | null = null;
  private curBlock = -1;
  private blockReadyAt = 0;
  private waitingMispredict = false;
  private waitingSerialize = false;
  private resumeAt = 0;
  /** Whether the wait until resumeAt is a misprediction redirect (else a serialize restart). */
  private resumeIsSquash = false;
  streamEnded = false;
  private endedAt = -1;
  draining = false;
  private readonly width: number;
  private readonly blockBytes: number;
  private readonly f2d: number;

  // Stats.
  fetchedInsts = 0;
  branches = 0;
  predictedTaken = 0;
  activeCycles = 0;
  squashCycles = 0;
  icacheStallCycles = 0;
  icacheAccesses = 0;
  icacheRetries = 0;
  serializeStallCycles = 0;
  queueFullCycles = 0;

  constructor(p: O3Params, private readonly stream: FetchStream, private readonly mem: O3MemPort, private readonly bpred: O3BPredPort) {
    this.width = p.fetchWidth;
    this.blockBytes = p.fetchBufferBytes;
    this.f2d = p.fetchToDecodeDelay;
    const cap = Math.max(p.fetchQueueSize, p.fetchWidth * (p.fetchToDecodeDelay + 2));
    this.queue = new SlotRing(cap, () => new FetchSlot());
  }

  /** Nothing left to fetch (stream ended, paused or draining) and nothing buffered. */
  get idle(): boolean {
    return (this.streamEnded || this.draining || this.stream.paused === true) && this.lookahead === null && this.queue.count === 0;
  }

  /** A mispredicted branch resolved: fetch restarts at `at` from a fresh fetch buffer. */
  redirect(at: number): void {
    this.waitingMispredict = false;
    this.resumeAt = at;
    this.resumeIsSquash = true;
    this.curBlock = -1;
  }
  /** A serializing instruction committed. */
  serializeDone(at: number): void {
    this.waitingSerialize = false;
    if (at > this.resumeAt) {
      this.resumeAt = at;
      this.resumeIsSquash = false;
    }
    this.curBlock = -1;
  }

  private lastTick = -1;

  tick(now: number): void {
    this.lastTick = now;
    if (this.waitingMispredict || (now < this.resumeAt && this.resumeIsSquash)) {
      this.squashCycles++;
      return;
    }
    if (this.waitingSerialize || now < this.resumeAt) {
      this.serializeStallCycles++;
      return;
    }
    let n = 0;
    while (n < this.width) {
      if (this.queue.full) {
        this.queueFullCycles++;
        break;
      }
      let inst = this.lookahead;
      if (inst === null) {
        if (this.streamEnded || this.draining || this.stream.paused === true) break;
        inst = this.stream.next();
        if (inst === null) {
          this.streamEnded = true;
          this.endedAt = now;
          break;
        }
        this.lookahead = inst;
      }
      const block = Math.floor(inst.pc / this.blockBytes);
      if (block !== this.curBlock) {
        const r = this.mem.fetch(block * this.blockBytes, now);
        if (r < 0) {
          this.icacheRetries++;
          this.icacheStallCycles++;
          break;
        }
        this.icacheAccesses++;
        this.curBlock = block;
        this.blockReadyAt = r;
      }
      if (this.blockReadyAt > now) {
        this.icacheStallCycles++;
        break;
      }
      this.lookahead = null;
      const slot = this.queue.push();
      slot.inst = inst;
      slot.readyAt = now + this.f2d;
      slot.uopCursor = 0;
      slot.hasPrediction = false;
      slot.mispredicted = false;
      slot.bpHandle = null;
      this.fetchedInsts++;
      n++;
      const br = inst.branch;
      if (br) {
        this.branches++;
        const fall = inst.pc + inst.len;
        const pred = this.bpred.predict(inst.pc, br.kind, fall);
        slot.hasPrediction = true;
        slot.bpHandle = pred.handle;
        const predictedNext = pred.taken ? pred.target : fall;
        if (predictedNext !== inst.nextPc) {
          slot.mispredicted = true;
          this.waitingMispredict = true;
          break;
        }
        if (pred.taken) {
          this.predictedTaken++;
          break;
        }
      }
      if (isSerializing(inst)) {
        this.waitingSerialize = true;
        break;
      }
    }
    if (n > 0) this.activeCycles++;
  }

  /** Whether the stream ended during the last tick (a state change without a counter). */
  streamEndedNow(): boolean {
    return this.endedAt === this.lastTick;
  }

  /** The earliest future cycle at which fetch could act on its own (Infinity: it waits on another stage). */
  nextEvent(now: number): number {
    let t = Infinity;
    if (!this.waitingMispredict && this.resumeAt > now) t = this.resumeAt;
    if (this.blockReadyAt > now && this.blockReadyAt < t) t = this.blockReadyAt;
    const head = this.queue.peek();
    if (head !== undefined && head.readyAt > now && head.readyAt < t) t = head.readyAt;
    return t;
  }

  /** Calls `squash` on the predictions of fetched, not yet decoded instructions younger than inst `instSeq`. */
  squashYounger(instSeq: number): void {
    for (let k = 0; k < this.queue.count; k++) {
      const slot = this.queue.at(k);
      if (slot.hasPrediction && slot.inst !== null && slot.inst.seq > instSeq) this.bpred.squash(slot.bpHandle);
    }
  }

  resetStats(): void {
    this.fetchedInsts = this.branches = this.predictedTaken = this.activeCycles = this.squashCycles = 0;
    this.icacheStallCycles = this.icacheAccesses = this.icacheRetries = this.serializeStallCycles = this.queueFullCycles = 0;
  }
}

export function isSerializing(inst: DynInst): boolean {
  const uops = inst.uops;
  for (let i = 0; i < uops.length; i++) if (uops[i]!.cls === 'Serialize') return true;
  return false;
}
