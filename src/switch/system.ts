/**
 * The System owns guest memory, the guest process and the CPU models (KVM in its worker,
 * atomic and o3 on this thread), and moves the guest between them:
 *
 *   switchTo(next) = current.drain() → current.switchOut() → Handoff (msgpack ThreadContext +
 *   ProcessState) → token moves → next.takeOverFrom(handoff)
 *
 * Memory is one buffer (an mmap KVM maps, viewed by every thread) and never copied. The
 * execution token makes sure only the model holding it runs guest instructions.
 *
 * System state machine (one line per state below):
 * ```mermaid
 * stateDiagram-v2
 *   [*] --> loaded: create / fromCheckpoint
 *   loaded --> running: start(model)
 *   running --> running: run / switchTo / checkpoint
 *   running --> ended: exit / fault
 *   running --> closed: close
 *   ended --> closed: close
 *   loaded --> closed: close
 * ```
 * - loaded: the program (or checkpoint) is in memory; the Handoff waits for a first model.
 * - running: exactly one model holds the guest and the token.
 * - ended: the guest exited or faulted; stats can still be read.
 * - closed: workers ended, memory released.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { PM_FLAG_MASK, PM_IO } from '../guest/pageTables.js';
import { AddressSpace } from '../guest/addressSpace.js';
import { encodeThreadContext, decodeThreadContext } from '../guest/contextCodec.js';
import { allocatePhysicalMemory, releasePhysicalMemory, type PhysicalMemory } from '../guest/physmem.js';
import { hostGuestIO, Process, type GuestIO } from '../guest/process.js';
import { decodeProcessState, encodeProcessState } from '../guest/processCodec.js';
import type { ThreadContext } from '../guest/threadContext.js';
import { KvmCpuClient } from '../kvm/client.js';
import { hwcapFromCpuid, type CpuidEntry } from '../kvm/cpuid.js';
import { captureHostCpuid } from '../kvm/cpuidProbe.js';
import { Kvm } from '../kvm/kvm.js';
import { installSeKernel } from '../kvm/seKernel.js';
import { detectHostFrequency } from '../kvm/hostFreq.js';
import { BASELINE_CPUID } from '../detailed/cpuidTable.js';
import { loadO3Config, o3Config, type O3Config } from '../detailed/o3/config.js';
import { ConfigError, InternalError } from '../errors.js';
import { prepareRun, type RunOptions } from '../run.js';
import type { Stat } from '../stats.js';
import { restoreCheckpointAsync, saveCheckpointAsync, unpackCheckpointPayload, type CheckpointInfo } from './checkpoint.js';
import { CheckpointError } from './errors.js';
import { AtomicModel, KvmModel, O3Model, type CpuModel, type Handoff, type JsModelContext, type ModelOutcome, type RunLimit } from './models.js';
import { ExecutionToken, RunTimeline, type CpuModelName } from './token.js';

export type SystemState = 'loaded' | 'running' | 'ended' | 'closed';

export interface SystemOptions {
  /** Models this System may use (KVM's worker is started only if listed). */
  models: readonly CpuModelName[];
  memSize?: number;
  hostFreqHz?: number;
  hostFactor?: number;
  allowRead?: string[];
  /** Capture guest stdout/stderr (tests) instead of passing them through. */
  capture?: boolean;
  /** o3 configuration: a JSON file or an object (default: built-in defaults). */
  o3Config?: string | O3Config;
  onWarning?: (message: string) => void;
  onInfo?: (message: string) => void;
}

export type ProgramSystemOptions = SystemOptions &
  Pick<RunOptions, 'program' | 'args' | 'argv0' | 'env' | 'seed' | 'glibcBaseline'>;

/** One completed switch. */
export interface SwitchRecord {
  from: CpuModelName;
  to: CpuModelName;
  /** Host ms for drain + switchOut + encode + takeOverFrom. */
  ms: number;
  /** Bytes of the handoff (ThreadContext + ProcessState records). */
  bytes: number;
  /** Guest instructions executed on `from` in the segment that ended (KVM: 0, not counted). */
  segmentInsts: number;
}

/** What a checkpoint records of the run besides the guest (restored with it). */
export interface SystemCheckpointConfig {
  cpuid: CpuidEntry[];
  xcr0: string | null;
  freqHz: number;
  hostFactor: number;
  memSize: number;
  [key: string]: unknown;
}

export class System {
  readonly timeline = new RunTimeline();
  readonly switches: SwitchRecord[] = [];
  private readonly models = new Map<CpuModelName, CpuModel>();
  private _state: SystemState = 'loaded';
  private currentModel: CpuModel | null = null;
  private pendingHandoff: Handoff | null;
  private segmentStartInsts = 0;

  private constructor(
    readonly token: ExecutionToken,
    private readonly captured: { stdout: Buffer[]; stderr: Buffer[] },
    readonly phys: PhysicalMemory,
    readonly process: Process,
    initial: Handoff,
    private readonly kvm: KvmCpuClient | null,
    readonly cpuid: readonly CpuidEntry[],
    readonly xcr0: bigint | null,
    readonly freqHz: number,
    readonly hostFactor: number,
    private readonly opts: SystemOptions,
  ) {
    this.pendingHandoff = initial;
  }

  /** Loads a program: memory, (KVM's worker,) the process image, and the first Handoff. */
  static async create(opts: ProgramSystemOptions): Promise<System> {
    const { o3Config: _o3, ...runOpts } = opts;
    const prep = prepareRun({ ...runOpts, cpu: opts.models[0] ?? 'kvm' });
    return System.boot(opts, prep.memSize, prep.freqHz, (phys, aspace, cpuid, io, warn) => {
      const { process, context } = Process.load(phys, prep.exeBytes, {
        exePath: prep.exePath,
        argv: prep.argv,
        ...(prep.execFn !== undefined ? { execFn: prep.execFn } : {}),
        envp: prep.env,
        allowRead: prep.allowRead,
        seed: opts.seed ?? 0n,
        hwcap: hwcapFromCpuid(cpuid),
        hwcap2: 0,
        io,
        warn,
        aspace,
      });
      return Promise.resolve({ process, context });
    });
  }

  /** Restores a checkpoint (any model may continue it). Memory size comes from the file. */
  static async fromCheckpoint(file: string, opts: SystemOptions): Promise<{ system: System; info: CheckpointInfo; config: Record<string, unknown>; stats: unknown; cpu: string }> {
    let bytes: Buffer;
    let head: Record<string, unknown>;
    try {
      bytes = readFileSync(file);
      head = unpackCheckpointPayload(bytes);
    } catch (e) {
      if (e instanceof CheckpointError) throw e;
      throw new CheckpointError(file, 'format', `cannot read the checkpoint: ${(e as Error).message}`);
    }
    const memSize = (head.memory as { memSize?: unknown } | undefined)?.memSize;
    if (typeof memSize !== 'number') throw new CheckpointError(file, 'format', 'no memory size', 'memory.memSize');
    const saved = (head.config ?? {}) as Partial<SystemCheckpointConfig>;
    let info: CheckpointInfo | undefined;
    let config: Record<string, unknown> = {};
    let stats: unknown = [];
    let cpu = '';
    const system = await System.boot({ ...opts, memSize, hostFactor: opts.hostFactor ?? saved.hostFactor ?? 1 }, memSize, opts.hostFreqHz ?? saved.freqHz, async (phys, _aspace, _cpuid, io, warn) => {
      // The bytes read for the header above: the file is read once.
      const loaded = await restoreCheckpointAsync(file, bytes, phys, { allowRead: opts.allowRead ?? [], io, warn });
      info = loaded.info;
      config = loaded.config;
      stats = loaded.stats;
      cpu = loaded.cpu;
      return { process: loaded.process, context: loaded.threadContext };
    }, saved.cpuid && !opts.models.includes('kvm') ? { cpuid: saved.cpuid, xcr0: saved.xcr0 ? BigInt(saved.xcr0) : null } : undefined);
    return { system, info: info!, config, stats, cpu };
  }

  private static async boot(
    opts: SystemOptions,
    memSize: number | undefined,
    freqHz: number | undefined,
    load: (phys: PhysicalMemory, aspace: AddressSpace, cpuid: readonly CpuidEntry[], io: GuestIO, warn: (m: string) => void) => Promise<{ process: Process; context: ThreadContext }>,
    savedCpu?: { cpuid: CpuidEntry[]; xcr0: bigint | null },
  ): Promise<System> {
    if (opts.models.length === 0) throw new ConfigError('--cpu', 'no CPU model to run on');
    const useKvm = opts.models.includes('kvm');
    const hz = freqHz ?? detectHostFrequency().hz;
    const phys = allocatePhysicalMemory(memSize ?? 2 * 1024 ** 3, useKvm || Kvm.probe().available ? 'mmap' : 'shared');
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    const warn = opts.onWarning ?? ((m: string) => process.stderr.write(`switchsim: warning: ${m}\n`));
    const io: GuestIO = opts.capture
      ? { write: (fd, b) => (fd === 1 ? stdout : stderr).push(Buffer.from(b)), read: () => new Uint8Array(0) }
      : hostGuestIO();
    const token = new ExecutionToken();
    let client: KvmCpuClient | null = null;
    try {
      let cpuid: readonly CpuidEntry[];
      let xcr0: bigint | null;
      let aspace: AddressSpace;
      if (useKvm) {
        client = await KvmCpuClient.start({
          memory: phys.handle,
          hostFreqHz: hz,
          hostFactor: opts.hostFactor ?? 1,
          output: opts.capture ? 'capture' : 'passthrough',
          token: token.buffer,
          allowRead: opts.allowRead ?? [],
          ...(opts.capture ? { onOutput: (fd: 1 | 2, d: Uint8Array) => (fd === 1 ? stdout : stderr).push(Buffer.from(d)) } : {}),
          onWarning: warn,
        });
        if (!client.bootAddressSpace) throw new InternalError('KVM worker booted without its address space');
        cpuid = client.cpuid;
        xcr0 = client.xcr0;
        aspace = AddressSpace.restore(phys, client.bootAddressSpace);
      } else {
        const host = savedCpu ? null : captureHostCpuid();
        cpuid = savedCpu?.cpuid ?? host?.cpuid ?? BASELINE_CPUID;
        xcr0 = savedCpu ? savedCpu.xcr0 : (host?.xcr0 ?? null);
        aspace = new AddressSpace(phys);
        // The SE kernel's pages too, so the guest (and its checkpoints) can move to KVM later.
        installSeKernel(aspace, phys);
      }
      const { process: guest, context } = await load(phys, aspace, cpuid, io, warn);
      const initial: Handoff = { threadContext: encodeThreadContext(context), processState: encodeProcessState(guest.snapshot()) };
      return new System(token, { stdout, stderr }, phys, guest, initial, client, cpuid, xcr0, hz, opts.hostFactor ?? 1, opts);
    } catch (e) {
      if (client) await client.terminate();
      releasePhysicalMemory(phys);
      throw e;
    }
  }

  /** Captured guest output so far (capture mode). */
  output(): { stdout: Buffer; stderr: Buffer } {
    return { stdout: Buffer.concat(this.captured.stdout), stderr: Buffer.concat(this.captured.stderr) };
  }

  get state(): SystemState {
    return this._state;
  }

  get current(): CpuModelName | null {
    return this.currentModel?.name ?? null;
  }

  /** The model object (created on first use; o3 keeps its caches for the System's lifetime). */
  model(name: CpuModelName): CpuModel {
    let m = this.models.get(name);
    if (m) return m;
    if (!this.opts.models.includes(name)) throw new ConfigError('--cpu', `model '${name}' was not enabled for this run (enabled: ${this.opts.models.join(', ')})`);
    const ctx: JsModelContext = {
      process: this.process,
      cpuid: this.cpuid,
      xcr0: this.xcr0,
      freqHz: this.freqHz,
      token: this.token,
      timeline: this.timeline,
      warn: this.opts.onWarning ?? ((msg: string) => process.stderr.write(`switchsim: warning: ${msg}\n`)),
    };
    if (name === 'kvm') {
      if (!this.kvm) throw new InternalError('KVM model requested but no worker was started');
      m = new KvmModel(this.kvm, this.freqHz, this.timeline);
    } else if (name === 'atomic') {
      m = new AtomicModel(ctx);
    } else {
      const c = this.opts.o3Config;
      m = new O3Model(ctx, typeof c === 'string' ? loadO3Config(c) : (c ?? o3Config({})));
    }
    this.models.set(name, m);
    return m;
  }

  /** Gives the loaded guest to its first model. */
  async start(name: CpuModelName): Promise<void> {
    if (this._state !== 'loaded' || !this.pendingHandoff) throw new InternalError(`System.start in state ${this._state}`);
    const m = this.model(name);
    this.token.acquire(name);
    await m.takeOverFrom(this.pendingHandoff);
    this.pendingHandoff = null;
    this.currentModel = m;
    this.segmentStartInsts = m.instructions();
    this._state = 'running';
  }

  /**
   * Replaces the guest's state with `h` on model `name` (drain, switch out, take over): a parallel
   * sampling worker taking each sample's state from the fast-forward's System. Memory contents
   * are the caller's to bring up to date first. Starts the System if it is still loaded.
   */
  async takeOver(name: CpuModelName, h: Handoff): Promise<void> {
    if (this._state === 'loaded') {
      this.pendingHandoff = h;
      return this.start(name);
    }
    const m = this.requireRunning('takeOver');
    if (m.name !== name) throw new InternalError(`System.takeOver on ${name} while ${m.name} runs`);
    await m.drain();
    await m.switchOut();
    await m.takeOverFrom(h);
    this.segmentStartInsts = m.instructions();
  }

  /** Runs the current model within `limit`. */
  async run(limit: RunLimit = {}): Promise<ModelOutcome> {
    const m = this.requireRunning('run');
    const out = await m.run(limit);
    if (out.kind === 'exited' || out.kind === 'faulted') this._state = 'ended';
    return out;
  }

  /** drain → switchOut → token → takeOverFrom. A no-op when `name` already runs. */
  async switchTo(name: CpuModelName): Promise<SwitchRecord | null> {
    const from = this.requireRunning('switchTo');
    if (from.name === name) return null;
    const to = this.model(name);
    const t0 = performance.now();
    const segmentInsts = from.instructions() - this.segmentStartInsts;
    await from.drain();
    const h = await from.switchOut();
    this.token.release(from.name);
    this.token.acquire(name);
    await to.takeOverFrom(h);
    this.currentModel = to;
    this.segmentStartInsts = to.instructions();
    const rec: SwitchRecord = {
      from: from.name,
      to: name,
      ms: performance.now() - t0,
      bytes: h.threadContext.length + h.processState.length,
      segmentInsts: from.exactInstructions ? segmentInsts : 0,
    };
    this.switches.push(rec);
    return rec;
  }

  /** The guest's exact state now, without leaving the current model (drain, switch out and back in). */
  async snapshot(): Promise<{ threadContext: ThreadContext; handoff: Handoff }> {
    const m = this.requireRunning('snapshot');
    await m.drain();
    const h = await m.switchOut();
    await m.takeOverFrom(h);
    return { threadContext: decodeThreadContext(h.threadContext), handoff: h };
  }

  /** Writes a checkpoint of the running guest; the run can go on afterwards. */
  async checkpoint(file: string, extra: { config?: Record<string, unknown>; stats?: readonly Stat[] } = {}): Promise<CheckpointInfo> {
    const m = this.requireRunning('checkpoint');
    const { threadContext, handoff } = await this.snapshot();
    const state = decodeProcessState(handoff.processState, this.phys.size);
    const config: SystemCheckpointConfig = {
      ...(extra.config ?? {}),
      cpuid: [...this.cpuid],
      xcr0: this.xcr0 === null ? null : this.xcr0.toString(),
      freqHz: this.freqHz,
      hostFactor: this.hostFactor,
      memSize: this.phys.size,
    };
    const stats = (extra.stats ?? []).map((s) => ({ ...s }));
    return saveCheckpointAsync(file, { threadContext, process: { state, phys: this.phys }, config, stats, cpu: m.name });
  }

  /**
   * The guest's state as a hash: registers (from the model holding the guest, drained or ended)
   * and the contents of every mapped user page. Equal hashes = equal architectural state.
   */
  async stateHash(): Promise<{ hash: string; threadContext: ThreadContext }> {
    const m = this.currentModel;
    if (!m) throw new InternalError('System.stateHash before start');
    if (m.state === 'active') await m.drain();
    const tc = await m.threadContext();
    // The main thread's copy of the address space is stale while another thread has the guest.
    if (m.name === 'kvm') this.process.adopt(decodeProcessState(await m.processState(), this.phys.size, this.process.aspace));
    const h = createHash('sha256');
    h.update(encodeThreadContext(tc));
    const bytes = this.phys.bytes;
    this.process.aspace.pageTables.forEachUserPage((vaddr, entry) => {
      if (entry & PM_IO) return;
      const pa = entry - (entry & PM_FLAG_MASK);
      const va = Buffer.alloc(8);
      va.writeDoubleLE(vaddr);
      h.update(va);
      h.update(bytes.subarray(pa, pa + 4096));
    });
    return { hash: h.digest('hex'), threadContext: tc };
  }

  /** Stats of every model used, gem5-style, plus the System's own (switches). */
  async stats(): Promise<Stat[]> {
    const out: Stat[] = [];
    let exact = 0;
    for (const m of this.models.values()) exact += m.instructions();
    out.push({ name: 'system.exactInsts', value: exact, desc: 'Guest instructions executed on models that count them (atomic, o3)', unit: 'Count' });
    out.push({ name: 'system.switches', value: this.switches.length, desc: 'CPU model switches', unit: 'Count' });
    if (this.switches.length > 0) {
      const ms = this.switches.map((s) => s.ms).sort((a, b) => a - b);
      out.push({ name: 'system.switchLatencyP50', value: ms[Math.floor(ms.length / 2)]! / 1000, desc: 'Median switch latency (drain, switchOut, takeOverFrom)', unit: 's' });
      out.push({ name: 'system.switchLatencyMax', value: ms[ms.length - 1]! / 1000, desc: 'Largest switch latency', unit: 's' });
    }
    for (const m of this.models.values()) out.push(...(await m.stats()));
    return out;
  }

  async resetStats(): Promise<void> {
    for (const m of this.models.values()) await m.resetStats();
  }

  /** Ends every model and releases memory. */
  async close(): Promise<void> {
    if (this._state === 'closed') return;
    for (const m of this.models.values()) await m.close();
    if (this.kvm && !this.models.has('kvm')) await this.kvm.terminate();
    this.process.close();
    releasePhysicalMemory(this.phys);
    this._state = 'closed';
  }

  private requireRunning(action: string): CpuModel {
    if (this._state !== 'running' || !this.currentModel) throw new InternalError(`System.${action} in state ${this._state}`);
    return this.currentModel;
  }
}
