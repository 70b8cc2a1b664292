import { InternalError, UserError } from '../errors.js';

/** A defect in the ELF file; `field` names the header field or table at fault. */
export class ElfError extends UserError {
  constructor(readonly field: string, message: string) {
    super(`invalid ELF (${field}): ${message}`);
  }
}

/** The guest program touched memory it may not (reported to the guest as EFAULT or SIGSEGV). */
export class GuestMemoryFault extends UserError {
  constructor(
    readonly address: bigint,
    readonly access: 'read' | 'write' | 'exec',
    readonly reason: 'unmapped' | 'protection',
  ) {
    super(`guest ${access} at 0x${address.toString(16)}: ${reason === 'unmapped' ? 'address not mapped' : 'permission denied'}`);
  }
}

/** Guest physical memory is exhausted (raise --mem-size). */
export class OutOfGuestMemoryError extends UserError {
  constructor(readonly requestedBytes: number, readonly memSize: number) {
    super(
      `guest physical memory exhausted: needed ${requestedBytes} more bytes of ${memSize} (raise --mem-size)`,
    );
  }
}

/** An invariant of the guest layer was broken: a switchsim bug. */
export class GuestInternalError extends InternalError {}

/** A decoded ProcessState (or AddressSpaceState) that is not one: names the field at fault. */
export class ProcessStateFormatError extends UserError {
  constructor(readonly field: string, message: string) {
    super(`bad process state (${field}): ${message}`);
  }
}

/** The guest waits for something that can never happen (e.g. a futex no other thread wakes). */
export class GuestDeadlockError extends UserError {}

/** The guest's program arguments cannot be set up (too large, bad strings, bad options). */
export class GuestSetupError extends UserError {}

/** No free range of user virtual addresses is large enough (reported to the guest as ENOMEM). */
export class GuestAddressSpaceError extends UserError {
  constructor(readonly length: number) {
    super(`no free range of ${length} bytes in the guest's address space`);
  }
}
