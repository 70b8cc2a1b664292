/**
 * Errors of the KVM layer. What the host lacks (no /dev/kvm, a missing capability) is a
 * `UserError`: the user can act on it (use the atomic CPU, fix permissions). A refused ioctl, an
 * exit we cannot decode or a use after close is an `InternalError`: switchsim asked for
 * something wrong.
 */
import { InternalError, UserError } from '../errors.js';
import { strerror } from '../native/libc.js';

// Keep in step with the README: the JS CPU models are the fallback once they exist.
const FALLBACK = 'the KVM CPU needs /dev/kvm (Linux x86-64 with hardware virtualization); this version has no other CPU model yet';

/** /dev/kvm is missing, cannot be opened, or speaks another API. */
export class KvmUnavailableError extends UserError {
  constructor(
    readonly path: string,
    /** Why, in words. */
    readonly reason: string,
    /** errno of the failed open, when it failed. */
    readonly errno?: number,
  ) {
    super(`KVM is unavailable: ${path}: ${reason}; ${FALLBACK}`);
  }
}

/** A capability switchsim needs is absent from this host's KVM. */
export class KvmCapabilityError extends UserError {
  constructor(
    /** e.g. 'KVM_CAP_SYNC_REGS'. */
    readonly capability: string,
    /** What switchsim needs it for. */
    readonly purpose: string,
    /** What KVM_CHECK_EXTENSION returned. */
    readonly got: number,
  ) {
    super(`this host's KVM lacks ${capability} (KVM_CHECK_EXTENSION returned ${got}), needed for ${purpose}; ${FALLBACK}`);
  }
}

/** An ioctl failed; carries its name and errno. */
export class KvmIoctlError extends InternalError {
  readonly errnoName: string;
  constructor(
    /** The kernel's name of the ioctl, e.g. 'KVM_SET_USER_MEMORY_REGION'. */
    readonly ioctl: string,
    readonly errno: number,
    /** What was asked, e.g. 'slot 0, guest 0x0, 4097 bytes at 0x7f…'. */
    readonly detail?: string,
  ) {
    const errnoName = strerror(errno);
    super(`${ioctl} failed: ${errnoName} (errno ${errno})${detail ? ` [${detail}]` : ''}`);
    this.errnoName = errnoName;
  }
}

/** KVM_GET_MSRS / KVM_SET_MSRS processed fewer MSRs than asked: the first one not done is named. */
export class KvmMsrError extends InternalError {
  constructor(
    readonly ioctl: string,
    /** The MSR index KVM refused. */
    readonly index: number,
    readonly done: number,
    readonly requested: number,
  ) {
    super(`${ioctl}: KVM refused MSR 0x${index.toString(16)} (${done} of ${requested} processed)`);
  }
}

/** kvm_run.exit_reason holds a value switchsim does not decode. */
export class KvmUnknownExitError extends InternalError {
  constructor(
    readonly reason: number,
    /** The header's name when the number is defined (a non-x86 or unhandled exit). */
    readonly reasonName?: string,
  ) {
    super(`KVM_RUN returned exit reason ${reason}${reasonName ? ` (${reasonName})` : ''}, which switchsim does not handle`);
  }
}

/** A Kvm/VmFd/VcpuFd method was called after close(). */
export class KvmClosedError extends InternalError {
  constructor(readonly what: string) {
    super(`${what} used after close()`);
  }
}
