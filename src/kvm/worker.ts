/**
 * The KVM CPU's worker thread. It owns the VM, the vCPU and the guest process while they run:
 * syscalls are emulated here, next to KVM_RUN, so a round trip never crosses threads. Requests
 * come as tagged messages; one the vCPU state does not allow is answered `notAllowed`.
 */
import { readFileSync, readSync, writeSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { SwitchsimError } from '../errors.js';
import { decodeThreadContext, encodeThreadContext } from '../guest/contextCodec.js';
import { decodeProcessState, encodeProcessState } from '../guest/processCodec.js';
import { ExecutionToken } from '../switch/token.js';
import { attachPhysicalMemory } from '../guest/physmem.js';
import { AddressSpace } from '../guest/addressSpace.js';
import { Process, type GuestIO } from '../guest/process.js';
import { libc } from '../native/libc.js';
import { ControlBlock } from './control.js';
import { captureCpuid, captureXcr0 } from './cpuidProbe.js';
import { hwcapFromCpuid } from './cpuid.js';
import { KvmCPU } from './kvmCpu.js';
import { KvmVM } from './kvmVm.js';
import type { FromWorker, KvmWorkerConfig, SerializedError, ToWorker } from './protocol.js';
import { installSeKernel } from './seKernel.js';
import { SE_SYSCALL_STUB_VADDR } from '../guest/layout.js';

const port = parentPort;
if (!port) throw new Error('worker.ts must run as a worker thread');
const config = workerData as KvmWorkerConfig;
const post = (m: FromWorker) => port.postMessage(m);

function serializeError(e: unknown): SerializedError {
  if (e instanceof Error) {
    return {
      name: e.name,
      message: e.message,
      ...(e.stack ? { stack: e.stack } : {}),
      userFault: e instanceof SwitchsimError ? e.userFault : false,
    };
  }
  return { name: 'Error', message: String(e), userFault: false };
}

function makeIO(): GuestIO {
  if (config.output === 'capture') {
    return {
      write: (fd, bytes) => post({ type: 'output', fd, data: bytes.slice() }),
      read: () => new Uint8Array(0),
    };
  }
  return {
    write: (fd, bytes) => {
      let off = 0;
      while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    },
    read: (_fd, max) => {
      const buf = Buffer.alloc(max);
      try {
        return buf.subarray(0, readSync(0, buf, 0, max, null));
      } catch {
        return new Uint8Array(0); // EAGAIN on a non-blocking stdin reads as end of file
      }
    },
  };
}

const phys = attachPhysicalMemory(config.memory);
const warn = (message: string) => post({ type: 'warning', message });
const io = makeIO();
let firstTakeOver = true;

function boot(): KvmCPU {
  const control = new ControlBlock(config.control);
  const machine = new KvmVM(phys);
  try {
    const aspace = new AddressSpace(phys);
    installSeKernel(aspace, phys);
    machine.setupLongMode(aspace);
    const cpuid = captureCpuid(machine, aspace);
    const xcr0 = captureXcr0(machine, aspace, cpuid);
    const cpuOpts = {
      hostFreqHz: config.hostFreqHz,
      hostFactor: config.hostFactor,
      warn,
      ...(config.token ? { token: new ExecutionToken(config.token) } : {}),
    };
    const p = config.program;
    if (!p) {
      // A System's worker: the System loads the program into this address space and hands it over.
      const cpu = new KvmCPU(machine, null, control, cpuOpts);
      post({ type: 'ready', tid: libc().gettid(), kvmRunAddress: machine.vcpu.kvmRunAddress, cpuid, xcr0, addressSpace: aspace.snapshot() });
      return cpu;
    }
    firstTakeOver = false;
    const { process: guest, context } = Process.load(phys, readFileSync(p.path), {
      exePath: p.path,
      argv: p.argv,
      envp: p.envp,
      allowRead: p.allowRead,
      cwd: p.cwd,
      seed: BigInt(p.seed),
      hwcap: hwcapFromCpuid(cpuid),
      hwcap2: 0,
      io,
      warn,
      aspace,
    });
    const cpu = new KvmCPU(machine, guest, control, cpuOpts);
    cpu.updateKvmState(context);
    post({ type: 'ready', tid: libc().gettid(), kvmRunAddress: machine.vcpu.kvmRunAddress, cpuid, xcr0, addressSpace: null });
    return cpu;
  } catch (e) {
    machine.close();
    throw e;
  }
}

let booted: KvmCPU;
try {
  booted = boot();
} catch (e) {
  // Answer the start-up with the error (a bad ELF is a user fault, not a crash), then end.
  post({ type: 'bootFailed', error: serializeError(e) });
  port.close();
  process.exit(1);
}
const cpu = booted;

/** Answers a request; null when the answer is deliberately withheld (fault injection). */
function handle(m: ToWorker): FromWorker | null {
  const refuse = (): FromWorker => ({ type: 'notAllowed', id: m.id, request: m.type, state: cpu.state });
  switch (m.type) {
    case 'run': {
      if (cpu.state !== 'ready' && cpu.state !== 'paused') return refuse();
      if (config.faultInjection === 'throwOnRun') throw new Error('injected fault: throwOnRun');
      if (config.faultInjection === 'crashOnRun') {
        // An uncaught exception outside any request handler: the worker dies without answering.
        setImmediate(() => {
          throw new Error('injected fault: crashOnRun');
        });
        return null;
      }
      const outcome = cpu.runUntilStop(m.options);
      return { type: 'ran', id: m.id, outcome, state: cpu.state, span: cpu.lastSpan, rip: cpu.state === 'paused' ? cpu.rip : null };
    }
    case 'pause':
      if (cpu.state !== 'paused' && cpu.state !== 'ready') return refuse();
      return { type: 'paused', id: m.id, state: cpu.state };
    case 'getState':
      if (cpu.state === 'closed' || cpu.state === 'created' || cpu.state === 'switchedOut') return refuse();
      return { type: 'state', id: m.id, state: cpu.state, threadContext: encodeThreadContext(cpu.updateThreadContext()) };
    case 'setState':
      if (!cpu.allowsSetState()) return refuse();
      cpu.updateKvmState(decodeThreadContext(m.threadContext));
      return { type: 'stateSet', id: m.id, state: cpu.state };
    case 'takeOver': {
      if (!['created', 'switchedOut', 'ready', 'paused'].includes(cpu.state)) return refuse();
      const tc = decodeThreadContext(m.threadContext);
      const state = decodeProcessState(m.processState, phys.size, cpu.hasProcess ? cpu.process.aspace : undefined);
      let guest: Process;
      if (cpu.hasProcess) {
        guest = cpu.process;
        guest.adopt(state);
      } else {
        guest = Process.restore(phys, state, { allowRead: config.allowRead ?? [], io, warn, memoryCurrent: true });
        // A process built without the SE kernel (an older checkpoint): add its pages now.
        if (!guest.aspace.findVma(SE_SYSCALL_STUB_VADDR)) installSeKernel(guest.aspace, phys);
      }
      cpu.takeOver(guest, tc, firstTakeOver);
      firstTakeOver = false;
      return { type: 'tookOver', id: m.id, state: cpu.state };
    }
    case 'getProcessState':
      if (!cpu.hasProcess || cpu.state === 'switchedOut' || cpu.state === 'closed') return refuse();
      cpu.syncGuestTime();
      return { type: 'processState', id: m.id, state: cpu.state, processState: encodeProcessState(cpu.process.snapshot()) };
    case 'switchOut': {
      if (cpu.state !== 'ready' && cpu.state !== 'paused') return refuse();
      const tc = cpu.switchOut();
      const processState = encodeProcessState(cpu.process.snapshot());
      return { type: 'switchedOut', id: m.id, state: cpu.state, threadContext: encodeThreadContext(tc), processState };
    }
    case 'getStats':
      return { type: 'stats', id: m.id, stats: cpu.stats };
    case 'finish': {
      if (cpu.state === 'running') return refuse();
      const stats = cpu.stats;
      cpu.close();
      return { type: 'finished', id: m.id, stats };
    }
  }
}

port.on('message', (m: ToWorker) => {
  let reply: FromWorker | null;
  try {
    reply = handle(m);
  } catch (e) {
    reply = { type: 'failed', id: m.id, error: serializeError(e) };
  }
  if (!reply) return;
  post(reply);
  if (reply.type === 'finished') port.close();
});
