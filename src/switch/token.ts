/**
 * The execution token: one slot in a SharedArrayBuffer naming the CPU model that may run guest
 * instructions. Every model checks it before it runs anything (the KVM worker before every
 * KVM_RUN, the JS models at every run() entry), so two models can never execute the guest at
 * once — enforced with Atomics, across threads, not by convention.
 *
 * Each model also records the host-time intervals it actually ran in, so a test can prove
 * that no two intervals of different models overlap.
 */
import { InternalError } from '../errors.js';

export type CpuModelName = 'kvm' | 'atomic' | 'o3';
export const CPU_MODEL_NAMES: readonly CpuModelName[] = ['kvm', 'atomic', 'o3'];

const NOBODY = 0;
const IDS: Record<CpuModelName, number> = { kvm: 1, atomic: 2, o3: 3 };
const NAMES = ['nobody', 'kvm', 'atomic', 'o3'] as const;

const SLOT_HOLDER = 0;
/** Incremented on every acquire: a model that saw another epoch knows the token moved. */
const SLOT_EPOCH = 1;
const SLOTS = 2;

/** A model tried to run (or take the token) while another holds it. */
export class ConcurrentExecutionError extends InternalError {
  constructor(readonly model: string, readonly holder: string, action: string) {
    super(`${model} tried to ${action} while ${holder} holds the execution token`);
  }
}

export class ExecutionToken {
  readonly words: Int32Array;

  /** A new token, or a view of an existing one (the buffer crosses to the KVM worker). */
  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(SLOTS * 4)) {
    this.words = new Int32Array(buffer);
  }

  get holder(): CpuModelName | null {
    const id = Atomics.load(this.words, SLOT_HOLDER);
    return id === NOBODY ? null : (NAMES[id] as CpuModelName);
  }

  get epoch(): number {
    return Atomics.load(this.words, SLOT_EPOCH);
  }

  /** Takes the free token for `model`; throws if another model holds it. */
  acquire(model: CpuModelName): void {
    const id = IDS[model];
    const prev = Atomics.compareExchange(this.words, SLOT_HOLDER, NOBODY, id);
    if (prev !== NOBODY && prev !== id) throw new ConcurrentExecutionError(model, NAMES[prev] ?? `#${prev}`, 'take the token');
    Atomics.add(this.words, SLOT_EPOCH, 1);
  }

  /** Gives the token back; only its holder may. */
  release(model: CpuModelName): void {
    const id = IDS[model];
    const prev = Atomics.compareExchange(this.words, SLOT_HOLDER, id, NOBODY);
    if (prev !== id) throw new ConcurrentExecutionError(model, NAMES[prev] ?? `#${prev}`, 'release the token');
  }

  /** Throws unless `model` holds the token: called before running any guest instruction. */
  check(model: CpuModelName): void {
    const id = Atomics.load(this.words, SLOT_HOLDER);
    if (id !== IDS[model]) throw new ConcurrentExecutionError(model, NAMES[id] ?? `#${id}`, 'run guest instructions');
  }
}

/** One stretch of host time in which a model executed guest instructions (hrtime, ns). */
export interface RunInterval {
  model: CpuModelName;
  startNs: number;
  endNs: number;
}

/** Host monotonic time in ns (CLOCK_MONOTONIC: the same clock in every thread). */
export function monotonicNs(): number {
  return Number(process.hrtime.bigint());
}

/** Records run intervals, bounded (the oldest are dropped past `limit`, and counted). */
export class RunTimeline {
  readonly intervals: RunInterval[] = [];
  dropped = 0;
  constructor(private readonly limit = 1_000_000) {}

  add(iv: RunInterval): void {
    if (this.intervals.length >= this.limit) {
      this.intervals.shift();
      this.dropped++;
    }
    this.intervals.push(iv);
  }
}

/** The first pair of intervals that overlap in time (of any models, the same one included), or null. */
export function findOverlap(intervals: readonly RunInterval[]): [RunInterval, RunInterval] | null {
  const sorted = [...intervals].sort((a, b) => a.startNs - b.startNs);
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1]!;
    const b = sorted[i]!;
    if (b.startNs < a.endNs) return [a, b];
  }
  return null;
}
