/**
 * Parallel sampling (after Sandberg et al.'s pFSA, which forks gem5 at each sample): the atomic
 * fast-forward goes on while a worker thread measures the sample it has just passed. The worker
 * keeps its own System — a copy of the guest's memory, the o3 model with its caches and branch
 * predictor, and a copy of the memory timestamp record — and at each sample takes over the
 * fast-forward's state: its registers and process state, the pages written since the previous
 * sample, and the record's changes (MemoryTimestamps.takeDelta). The two Systems never share a
 * guest: each has its own memory and its own execution token, so no guest is ever run by two
 * models at once. The worker measures samples in order, so its o3 sees the same succession of
 * samples, and measures the same values, as the serial sampler.
 *
 * The worker's states (sampleWorker.ts); a request after `close` is answered `notAllowed`:
 * ```mermaid
 * stateDiagram-v2
 *   [*] --> idle: ready (its System loaded)
 *   idle --> measuring: sample (takes over the state sent)
 *   measuring --> idle: measured
 *   measuring --> ended: the guest exited or faulted inside the sample (dropped)
 *   ended --> ended: sample (answered ended: dropped)
 *   idle --> closed: close
 *   ended --> closed: close
 * ```
 */
import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { RecordDelta } from '../detailed/memoryTimestamps.js';
import { InternalError, SwitchsimError, UserError } from '../errors.js';
import { PAGE_SIZE } from '../guest/physmem.js';
import { workerScript } from '../util/workerScript.js';
import type { Handoff } from '../switch/models.js';
import type { SampleParams } from './measure.js';

/** What the worker's System is built from: the fast-forward System's program and configuration. */
export interface SampleWorkerConfig {
  program: string;
  args: string[];
  argv0?: string;
  env?: string[];
  guestSeed?: string;
  glibcBaseline?: boolean;
  memSize: number;
  allowRead: string[];
  hostFreqHz: number;
  hostFactor: number;
  o3Config?: string;
  params: SampleParams;
}

/**
 * Guest memory to bring up to date: every allocated page (`pages` null: bytes [0, bytes.length)),
 * or the listed physical page numbers, 4 KiB each in `bytes`.
 */
export interface MemoryUpdate {
  pages: Float64Array | null;
  bytes: Uint8Array;
}

export type ToSampleWorker =
  /** `verify`: also answer the hash of the guest's memory once taken over (stateHash). */
  | { kind: 'sample'; index: number; handoff: Handoff; memory: MemoryUpdate; record: RecordDelta; wantBbv: boolean; verify: boolean }
  | { kind: 'close' };

/** A sample the worker measured: what the serial sampler keeps of measureSample's outcome. */
export interface WorkerSample {
  kind: 'measured';
  startRip: number;
  unitRip: number;
  warmInsts: number;
  o3Insts: number;
  /** keyStatsOf(o3 stats) */
  cycles: number;
  insts: number;
  keyStats: Record<string, number>;
  /** The warming's basic blocks: [start, end, instructions]. */
  bbv: [number, number, number][];
  /** The unit's code: [block start, instructions]. */
  unitCode: [number, number][];
  warmingSeconds: number;
  detailedSeconds: number;
  /** Copying memory and taking over the state. */
  syncSeconds: number;
  /** With `verify`: memoryHash of the worker's copy right after taking over. */
  stateHash?: string;
}

export type WorkerSampleOutcome = WorkerSample | { kind: 'ended'; reason: string };

export type FromSampleWorker =
  | { kind: 'ready' }
  | { kind: 'sample'; index: number; outcome: WorkerSampleOutcome }
  | { kind: 'notAllowed'; request: string; state: string }
  /** An exception in the worker; `userFault`: a switchsim error blaming the input (SwitchsimError.userFault). */
  | { kind: 'failed'; message: string; name: string; userFault: boolean; stack?: string };

/** The worker crashed or answered out of protocol: a bug, not the user's. */
export class SampleWorkerError extends InternalError {}

/** The input's fault met inside a sample (an unsupported instruction, say), as the worker reported it. */
export class SampleWorkerUserError extends UserError {}

/** What the worker posts for an exception it caught. */
export function failure(e: unknown): Extract<FromSampleWorker, { kind: 'failed' }> {
  const err = e instanceof Error ? e : new Error(String(e));
  return { kind: 'failed', message: err.message, name: err.name, userFault: e instanceof SwitchsimError && e.userFault, ...(err.stack ? { stack: err.stack } : {}) };
}

function failed(m: Extract<FromSampleWorker, { kind: 'failed' }>): Error {
  const e = m.userFault ? new SampleWorkerUserError(`${m.name} in a sample: ${m.message}`) : new SampleWorkerError(`sampling worker: ${m.name}: ${m.message}`);
  if (m.stack) e.stack = m.stack;
  return e;
}

function workerEntry(): string {
  return workerScript(import.meta.url, 'sampleWorker.js', (built) => new SampleWorkerError(`the sampling worker is not built (${built} is missing): run npm run build`));
}

/** The main thread's side: posts samples in order, hands back their outcomes in the same order. */
export class SampleWorkerClient {
  private readonly waiting = new Map<number, { resolve: (o: WorkerSampleOutcome) => void; reject: (e: Error) => void }>();
  private dead: Error | null = null;
  posted = 0;

  private constructor(private readonly worker: Worker) {}

  static async start(config: SampleWorkerConfig): Promise<SampleWorkerClient> {
    const worker = new Worker(workerEntry(), { workerData: config });
    const client = new SampleWorkerClient(worker);
    await new Promise<void>((resolve, reject) => {
      worker.on('message', (m: FromSampleWorker) => {
        if (m.kind === 'ready') resolve();
        else if (m.kind === 'failed') {
          const e = failed(m);
          client.fail(e);
          reject(e);
        } else client.onMessage(m);
      });
      worker.on('error', (e) => {
        const err = new SampleWorkerError(`sampling worker crashed: ${e.message}`);
        client.fail(err);
        reject(err);
      });
      worker.on('exit', (code) => {
        const err = new SampleWorkerError(`sampling worker exited with code ${code}`);
        if (client.waiting.size > 0) client.fail(err);
        client.dead ??= err;
        reject(err);
      });
    });
    return client;
  }

  private onMessage(m: FromSampleWorker): void {
    if (m.kind === 'sample') {
      const w = this.waiting.get(m.index);
      if (!w) return this.fail(new SampleWorkerError(`sampling worker answered sample ${m.index}, which was not asked for`));
      this.waiting.delete(m.index);
      w.resolve(m.outcome);
    } else if (m.kind === 'notAllowed') {
      this.fail(new SampleWorkerError(`sampling worker: ${m.request} is not allowed in state ${m.state}`));
    }
  }

  private fail(e: Error): void {
    this.dead ??= e;
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
  }

  /** Asks for a sample from this state; the promise settles when the worker has measured it. */
  measure(handoff: Handoff, memory: MemoryUpdate, record: RecordDelta, wantBbv: boolean, verify = false): Promise<WorkerSampleOutcome> {
    if (this.dead) return Promise.reject(this.dead);
    const index = this.posted++;
    const p = new Promise<WorkerSampleOutcome>((resolve, reject) => this.waiting.set(index, { resolve, reject }));
    const msg: ToSampleWorker = { kind: 'sample', index, handoff, memory, record, wantBbv, verify };
    const transfer = [memory.bytes.buffer, record.pages.buffer, record.vpns.buffer, record.stamps.buffer, record.written.buffer];
    if (memory.pages) transfer.push(memory.pages.buffer);
    this.worker.postMessage(msg, transfer as ArrayBuffer[]);
    return p;
  }

  async close(): Promise<void> {
    if (!this.dead) this.worker.postMessage({ kind: 'close' } satisfies ToSampleWorker);
    await this.worker.terminate();
  }
}

/**
 * The pages to send with a sample: all allocated memory when a syscall may have written to it
 * (or for the first sample), else the pages the CPU wrote since the last one (record.dirty).
 */
export function memoryUpdate(bytes: Uint8Array, highWater: number, dirty: readonly number[] | null): MemoryUpdate {
  if (dirty === null) return { pages: null, bytes: bytes.slice(0, highWater) };
  const pages = new Float64Array(dirty);
  const out = new Uint8Array(dirty.length * PAGE_SIZE);
  for (let i = 0; i < dirty.length; i++) out.set(bytes.subarray(dirty[i]! * PAGE_SIZE, (dirty[i]! + 1) * PAGE_SIZE), i * PAGE_SIZE);
  return { pages, bytes: out };
}

/** A hash of guest memory below the allocator's high-water mark (SampleOptions.verifyParallel). */
export function memoryHash(bytes: Uint8Array, highWater: number): string {
  return createHash('sha1').update(bytes.subarray(0, highWater)).digest('hex');
}

/** The worker's side of memoryUpdate. */
export function applyMemoryUpdate(bytes: Uint8Array, u: MemoryUpdate): void {
  if (u.pages === null) {
    bytes.set(u.bytes, 0);
    return;
  }
  for (let i = 0; i < u.pages.length; i++) bytes.set(u.bytes.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE), u.pages[i]! * PAGE_SIZE);
}
