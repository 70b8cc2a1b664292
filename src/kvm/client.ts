/**
 * Main-thread side of the KVM CPU: starts the worker, sends tagged requests, kicks the vCPU out
 * of KVM_RUN (immediate_exit + a signal to its thread) for quanta, pauses and time limits, and
 * turns every worker failure (an error answer, an uncaught exception, a dead worker) into a
 * rejected promise — never a hang.
 */
import { Worker } from 'node:worker_threads';
import { workerScript } from '../util/workerScript.js';
import { InternalError, UserError } from '../errors.js';
import { libc, SIGUSR2 } from '../native/libc.js';
import type { FromWorker, KvmRunOptions, KvmWorkerConfig, RunOutcome, RunSpan, SerializedError, ToWorker, VcpuStateName } from './protocol.js';
import type { AddressSpaceState } from '../guest/addressSpace.js';
import { ControlBlock, StopRequest } from './control.js';
import type { CpuidEntry } from './cpuid.js';
import type { KvmStats } from './stats.js';
import { decodeThreadContext, encodeThreadContext } from '../guest/contextCodec.js';
import type { ThreadContext } from '../guest/threadContext.js';
import { KVM_RUN_LAYOUT } from './abi.js';

/** A request the worker refused in its current state. */
export class NotAllowedError extends UserError {
  constructor(readonly request: string, readonly state: VcpuStateName) {
    super(`KVM CPU: '${request}' is not allowed in state '${state}'`);
  }
}

/** The worker reported an error or died. */
export class KvmWorkerError extends InternalError {
  constructor(message: string, readonly remoteStack?: string, readonly remoteUserFault = false) {
    super(message);
  }
}

type Pending = { resolve: (m: FromWorker) => void; reject: (e: Error) => void; request: ToWorker['type'] };
type Request = ToWorker extends infer T ? (T extends { id: number } ? Omit<T, 'id'> : never) : never;

let signalHandlerInstalled = false;
function installKickHandler(): void {
  // The kick signal must not kill the process: install a no-op handler process-wide once.
  if (!signalHandlerInstalled) {
    process.on('SIGUSR2', () => {});
    signalHandlerInstalled = true;
  }
}

export interface KvmClientOptions extends Omit<KvmWorkerConfig, 'control'> {
  onOutput?: (fd: 1 | 2, data: Uint8Array) => void;
  onWarning?: (message: string) => void;
}

export class KvmCpuClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private dead: Error | null = null;
  private tid = 0;
  private kvmRunHeader: Uint8Array | null = null;
  cpuid: CpuidEntry[] = [];
  /** XCR0 as the guest's xgetbv reads it (null without OSXSAVE). */
  xcr0: bigint | null = null;
  private running = false;
  /** Bare boot: the worker's address space (SE kernel mapped) for the System to load the program into. */
  bootAddressSpace: AddressSpaceState | null = null;
  /** Host time the worker's run loop took in the last run(). */
  lastSpan: RunSpan | null = null;
  /** Where the last run stopped when it paused (a user instruction's rip), else null. */
  lastRip: number | null = null;
  /** The vCPU state after the last answered request. */
  state: VcpuStateName = 'created';

  private constructor(
    private readonly worker: Worker,
    private readonly control: ControlBlock,
    private readonly opts: KvmClientOptions,
  ) {}

  static async start(opts: KvmClientOptions): Promise<KvmCpuClient> {
    installKickHandler();
    const control = new ControlBlock();
    const { onOutput: _o, onWarning: _w, ...rest } = opts;
    const config: KvmWorkerConfig = { ...rest, control: control.buffer };
    const worker = new Worker(workerEntry(), { workerData: config, stdout: false, stderr: false });
    const client = new KvmCpuClient(worker, control, opts);
    await client.waitReady();
    return client;
  }

  private waitReady(): Promise<void> {
    return new Promise((resolve, reject) => {
      const fail = (e: Error) => {
        this.dead ??= e;
        for (const p of this.pending.values()) p.reject(e);
        this.pending.clear();
        reject(e);
      };
      this.worker.on('message', (m: FromWorker) => {
        if (m.type === 'bootFailed') {
          fail(deserializeError(m.error));
          return;
        }
        if (m.type === 'ready') {
          this.tid = m.tid;
          this.cpuid = m.cpuid;
          this.xcr0 = m.xcr0;
          this.bootAddressSpace = m.addressSpace;
          this.state = m.addressSpace ? 'created' : 'ready';
          this.kvmRunHeader = new Uint8Array(libc().view(m.kvmRunAddress, KVM_RUN_LAYOUT.headerBytes));
          resolve();
          return;
        }
        this.onMessage(m);
      });
      this.worker.on('error', (e) => fail(wrapWorkerError(e)));
      this.worker.on('exit', (code) => {
        if (code !== 0 || this.pending.size > 0) fail(new KvmWorkerError(`KVM worker exited with code ${code}`));
        else this.dead ??= new KvmWorkerError('KVM worker has finished');
      });
    });
  }

  private onMessage(m: FromWorker): void {
    switch (m.type) {
      case 'output':
        if (this.opts.onOutput) this.opts.onOutput(m.fd, m.data);
        return;
      case 'warning':
        (this.opts.onWarning ?? ((s: string) => process.stderr.write(`switchsim: warning: ${s}\n`)))(m.message);
        return;
      case 'ready':
      case 'bootFailed':
        return;
      default: {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.type === 'failed') p.reject(deserializeError(m.error));
        else if (m.type === 'notAllowed') p.reject(new NotAllowedError(m.request, m.state));
        else {
          if ('state' in m) this.state = m.state;
          p.resolve(m);
        }
      }
    }
  }

  private request<T extends FromWorker['type']>(req: Request): Promise<Extract<FromWorker, { type: T }>> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (m: FromWorker) => void, reject, request: req.type });
      this.worker.postMessage({ ...req, id } as ToWorker);
    });
  }

  /** Runs the guest until it exits, faults, or is stopped by pause()/kick(). */
  async run(options?: KvmRunOptions): Promise<RunOutcome> {
    this.running = true;
    try {
      const m = await this.request<'ran'>(options ? { type: 'run', options } : { type: 'run' });
      this.lastSpan = m.span;
      this.lastRip = m.rip;
      return m.outcome;
    } finally {
      this.running = false;
    }
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** Forces the vCPU out of KVM_RUN: the running `run()` resolves with 'paused' or 'stopped'. */
  kick(reason: StopRequest = StopRequest.Pause): void {
    if (this.dead || !this.kvmRunHeader) return;
    this.control.requestStop(reason);
    this.kvmRunHeader[KVM_RUN_LAYOUT.immediateExit] = 1;
    libc().tgkill(process.pid, this.tid, SIGUSR2);
  }

  /** Pauses a running guest; resolves when the worker is back in its message loop. */
  async pause(): Promise<VcpuStateName> {
    if (this.running) this.kick(StopRequest.Pause);
    const m = await this.request<'paused'>({ type: 'pause' });
    return m.state;
  }

  async getState(): Promise<ThreadContext> {
    const m = await this.request<'state'>({ type: 'getState' });
    return decodeThreadContext(m.threadContext);
  }

  async setState(tc: ThreadContext): Promise<void> {
    await this.request<'stateSet'>({ type: 'setState', threadContext: encodeThreadContext(tc) });
  }

  /** Hands the guest to the vCPU (gem5: takeOverFrom): msgpack ThreadContext and ProcessState. */
  async takeOver(threadContext: Uint8Array, processState: Uint8Array): Promise<void> {
    await this.request<'tookOver'>({ type: 'takeOver', threadContext, processState });
  }

  /** The guest process's state (msgpack), leaving the vCPU as it is. */
  async getProcessState(): Promise<Uint8Array> {
    return (await this.request<'processState'>({ type: 'getProcessState' })).processState;
  }

  /** Takes the guest back from the vCPU (gem5: switchOut): both records, msgpack. */
  async switchOut(): Promise<{ threadContext: Uint8Array; processState: Uint8Array }> {
    const m = await this.request<'switchedOut'>({ type: 'switchOut' });
    return { threadContext: m.threadContext, processState: m.processState };
  }

  async stats(): Promise<KvmStats> {
    return (await this.request<'stats'>({ type: 'getStats' })).stats;
  }

  /** Ends the VM and the worker; returns the final stats. */
  async finish(): Promise<KvmStats> {
    const m = await this.request<'finished'>({ type: 'finish' });
    await this.worker.terminate();
    return m.stats;
  }

  /** Kills the worker without ceremony (after an error). */
  async terminate(): Promise<void> {
    this.dead ??= new KvmWorkerError('KVM worker terminated');
    await this.worker.terminate();
  }
}

/**
 * The worker's compiled entry. Running from the TypeScript sources (the tests), the worker
 * still has to be JavaScript: use the build output next to them.
 */
function workerEntry(): string {
  return workerScript(import.meta.url, 'worker.js', (built) => new KvmWorkerError(`the KVM worker is not built (${built} is missing): run npm run build`));
}

function wrapWorkerError(e: unknown): Error {
  if (e instanceof Error) return new KvmWorkerError(`KVM worker crashed: ${e.message}`, e.stack);
  return new KvmWorkerError(`KVM worker crashed: ${String(e)}`);
}

function deserializeError(e: SerializedError): Error {
  if (e.userFault) {
    const err = new UserError(e.message);
    if (e.stack) err.stack = e.stack;
    return err;
  }
  return new KvmWorkerError(`${e.name}: ${e.message}`, e.stack);
}
