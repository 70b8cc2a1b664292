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
