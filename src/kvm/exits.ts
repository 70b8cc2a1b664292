/**
 * kvm_run decoded once, after each KVM_RUN, into a discriminated union. Handlers switch on
 * `exit.reason` and never touch kvm_run offsets themselves.
 */
import { KVM_INTERNAL_ERROR_MAX_DATA, KVM_RUN_LAYOUT, KVM_SYSTEM_EVENT_MAX_DATA } from './abi.js';
import { KvmUnknownExitError } from './errors.js';
import { KVM_EXIT, KVM_EXIT_IO_OUT, kvmExitName } from './ioctls.js';

export type KvmExit =
  /** KVM_EXIT_IO: `in`/`out`. The data is at kvm_run + dataOffset, size*count bytes (see ioData). */
  | { reason: 'io'; direction: 'in' | 'out'; size: number; port: number; count: number; dataOffset: number }
  /** KVM_EXIT_MMIO: `data` is a live view of kvm_run.mmio.data (len bytes); for a read, fill it
   * before the next KVM_RUN; copy it if it must outlive that run. */
  | { reason: 'mmio'; physAddr: bigint; len: number; isWrite: boolean; data: Uint8Array }
  | { reason: 'hlt' }
  /** Triple fault (or, on kvm_pvm, a CPL0 hlt with IF=0). */
  | { reason: 'shutdown' }
  | { reason: 'failEntry'; hardwareReason: bigint; cpu: number }
  /** `data`: the first min(ndata, 16) words of internal.data (KVM_CAP_INTERNAL_ERROR_DATA). */
  | { reason: 'internalError'; suberror: number; data: bigint[] }
  | { reason: 'systemEvent'; type: number; data: bigint[] }
  /** KVM_RUN returned EINTR (immediate_exit or a signal), or exit_reason KVM_EXIT_INTR. */
  | { reason: 'intr' }
  | { reason: 'debug'; exception: number; pc: bigint; dr6: bigint; dr7: bigint }
  | { reason: 'exception'; exception: number; errorCode: number }
  /** KVM_EXIT_UNKNOWN (0): the hardware exit reason KVM could not handle. */
  | { reason: 'unknown'; hardwareExitReason: bigint }
  | { reason: 'hypercall'; nr: bigint; args: bigint[]; longmode: number }
  | { reason: 'irqWindowOpen' }
  | { reason: 'setTpr' }
  | { reason: 'tprAccess'; rip: bigint; isWrite: boolean }
  | { reason: 'nmi' }
  | { reason: 'ioapicEoi'; vector: number }
  | { reason: 'rdmsr'; index: number; msrReason: number }
  | { reason: 'wrmsr'; index: number; data: bigint; msrReason: number }
  | { reason: 'dirtyRingFull' }
  | { reason: 'apResetHold' }
  | { reason: 'busLock' }
  | { reason: 'notify'; flags: number };

export type KvmExitReason = KvmExit['reason'];

// Hoisted once: plain locals on the hot path.
const L = KVM_RUN_LAYOUT;
const EXIT_REASON = L.exitReason;

const HLT: KvmExit = Object.freeze({ reason: 'hlt' });
const SHUTDOWN: KvmExit = Object.freeze({ reason: 'shutdown' });
/** Shared by every EINTR return: no allocation when a vCPU is kicked. */
export const INTR_EXIT: KvmExit = Object.freeze({ reason: 'intr' });
const IRQ_WINDOW_OPEN: KvmExit = Object.freeze({ reason: 'irqWindowOpen' });
const SET_TPR: KvmExit = Object.freeze({ reason: 'setTpr' });
const NMI: KvmExit = Object.freeze({ reason: 'nmi' });
const DIRTY_RING_FULL: KvmExit = Object.freeze({ reason: 'dirtyRingFull' });
const AP_RESET_HOLD: KvmExit = Object.freeze({ reason: 'apResetHold' });
const BUS_LOCK: KvmExit = Object.freeze({ reason: 'busLock' });

function u64s(run: DataView, at: number, n: number): bigint[] {
  const out: bigint[] = [];
  for (let i = 0; i < n; i++) out.push(run.getBigUint64(at + 8 * i, true));
  return out;
}

/** Decodes the exit described by a kvm_run (after KVM_RUN returned 0). */
export function decodeExit(run: DataView): KvmExit {
  const reason = run.getUint32(EXIT_REASON, true);
  switch (reason) {
    case KVM_EXIT.IO:
      return {
        reason: 'io',
        direction: run.getUint8(L.ioDirection) === KVM_EXIT_IO_OUT ? 'out' : 'in',
        size: run.getUint8(L.ioSize),
        port: run.getUint16(L.ioPort, true),
        count: run.getUint32(L.ioCount, true),
        dataOffset: Number(run.getBigUint64(L.ioDataOffset, true)),
      };
    case KVM_EXIT.MMIO: {
      const len = Math.min(run.getUint32(L.mmioLen, true), 8);
      return {
        reason: 'mmio',
        physAddr: run.getBigUint64(L.mmioPhysAddr, true),
        len,
        isWrite: run.getUint8(L.mmioIsWrite) !== 0,
        data: new Uint8Array(run.buffer, run.byteOffset + L.mmioData, len),
      };
    }
    case KVM_EXIT.HLT:
      return HLT;
    case KVM_EXIT.SHUTDOWN:
      return SHUTDOWN;
    case KVM_EXIT.INTR:
      return INTR_EXIT;
    case KVM_EXIT.FAIL_ENTRY:
      return {
        reason: 'failEntry',
        hardwareReason: run.getBigUint64(L.failEntryHardwareReason, true),
        cpu: run.getUint32(L.failEntryCpu, true),
      };
    case KVM_EXIT.INTERNAL_ERROR: {
      const n = Math.min(run.getUint32(L.internalNdata, true), KVM_INTERNAL_ERROR_MAX_DATA);
      return { reason: 'internalError', suberror: run.getUint32(L.internalSuberror, true), data: u64s(run, L.internalData, n) };
    }
    case KVM_EXIT.SYSTEM_EVENT: {
      const n = Math.min(run.getUint32(L.systemEventNdata, true), KVM_SYSTEM_EVENT_MAX_DATA);
      return { reason: 'systemEvent', type: run.getUint32(L.systemEventType, true), data: u64s(run, L.systemEventData, n) };
    }
    case KVM_EXIT.DEBUG:
      return {
        reason: 'debug',
        exception: run.getUint32(L.debugException, true),
        pc: run.getBigUint64(L.debugPc, true),
        dr6: run.getBigUint64(L.debugDr6, true),
        dr7: run.getBigUint64(L.debugDr7, true),
      };
    case KVM_EXIT.EXCEPTION:
      return { reason: 'exception', exception: run.getUint32(L.exException, true), errorCode: run.getUint32(L.exErrorCode, true) };
    case KVM_EXIT.UNKNOWN:
      return { reason: 'unknown', hardwareExitReason: run.getBigUint64(L.hwHardwareExitReason, true) };
    case KVM_EXIT.HYPERCALL:
      return {
        reason: 'hypercall',
        nr: run.getBigUint64(L.hypercallNr, true),
        args: u64s(run, L.hypercallArgs, 6),
        longmode: run.getUint32(L.hypercallLongmode, true),
      };
    case KVM_EXIT.IRQ_WINDOW_OPEN:
      return IRQ_WINDOW_OPEN;
    case KVM_EXIT.SET_TPR:
      return SET_TPR;
    case KVM_EXIT.TPR_ACCESS:
      return { reason: 'tprAccess', rip: run.getBigUint64(L.tprAccessRip, true), isWrite: run.getUint32(L.tprAccessIsWrite, true) !== 0 };
    case KVM_EXIT.NMI:
      return NMI;
    case KVM_EXIT.IOAPIC_EOI:
      return { reason: 'ioapicEoi', vector: run.getUint8(L.eoiVector) };
    case KVM_EXIT.X86_RDMSR:
      return { reason: 'rdmsr', index: run.getUint32(L.msrIndex, true), msrReason: run.getUint32(L.msrReason, true) };
    case KVM_EXIT.X86_WRMSR:
      return {
        reason: 'wrmsr',
        index: run.getUint32(L.msrIndex, true),
        data: run.getBigUint64(L.msrData, true),
        msrReason: run.getUint32(L.msrReason, true),
      };
    case KVM_EXIT.DIRTY_RING_FULL:
      return DIRTY_RING_FULL;
    case KVM_EXIT.AP_RESET_HOLD:
      return AP_RESET_HOLD;
    case KVM_EXIT.X86_BUS_LOCK:
      return BUS_LOCK;
    case KVM_EXIT.NOTIFY:
      return { reason: 'notify', flags: run.getUint32(L.notifyFlags, true) };
    default:
      // Other architectures' exits, hyperv/xen (never enabled), and numbers beyond the header.
      throw new KvmUnknownExitError(reason, kvmExitName(reason));
  }
}

/** The bytes of an 'io' exit (size*count at dataOffset): a live view of kvm_run; for `in`, write the
 * value here before the next KVM_RUN. */
export function ioData(run: DataView, exit: Extract<KvmExit, { reason: 'io' }>): Uint8Array {
  return new Uint8Array(run.buffer, run.byteOffset + exit.dataOffset, exit.size * exit.count);
}

/** One-line description of an exit, for logs and error messages. */
export function describeExit(exit: KvmExit): string {
  const hex = (v: number | bigint): string => `0x${v.toString(16)}`;
  switch (exit.reason) {
    case 'io':
      return `io ${exit.direction} port ${hex(exit.port)} size ${exit.size} count ${exit.count}`;
    case 'mmio':
      return `mmio ${exit.isWrite ? 'write' : 'read'} ${hex(exit.physAddr)} len ${exit.len}`;
    case 'failEntry':
      return `failEntry hardware reason ${hex(exit.hardwareReason)} cpu ${exit.cpu}`;
    case 'internalError':
      return `internalError suberror ${exit.suberror} data [${exit.data.map(hex).join(', ')}]`;
    case 'systemEvent':
      return `systemEvent type ${exit.type}`;
    case 'debug':
      return `debug exception ${exit.exception} pc ${hex(exit.pc)}`;
    case 'exception':
      return `exception ${exit.exception} error code ${hex(exit.errorCode)}`;
    case 'unknown':
      return `unknown hardware exit reason ${hex(exit.hardwareExitReason)}`;
    default:
      return exit.reason;
  }
}
