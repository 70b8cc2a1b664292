/** Errors and exceptions of the functional core. */
import { UserError } from '../errors.js';

/**
 * A guest exception (what the hardware would raise): thrown through instruction execution and
 * caught by the CPU loop, which turns it into a signal report like the KVM CPU does. Not an
 * Error: no stack trace is captured on the hot path.
 */
export class GuestException {
  constructor(
    readonly vector: number,
    readonly errorCode: number,
    /**
     * For #PF: the faulting linear address. For the traps raised by int3/int1/`int 3`/`int 4`
     * (#BP, #DB, #OF): the address of the next instruction, the rip the trap reports.
     */
    readonly address: number,
  ) {}
}

/** An access to an I/O page (m5op window, doorbell): served by the CPU, then the instruction reruns. */
export class GuestIoAccess {
  constructor(
    readonly address: number,
    readonly size: number,
    readonly isWrite: boolean,
  ) {}
}

export const VEC_DE = 0;
export const VEC_DB = 1;
export const VEC_BP = 3;
export const VEC_OF = 4;
export const VEC_UD = 6;
export const VEC_GP = 13;
export const VEC_PF = 14;
export const VEC_MF = 16;
export const VEC_XM = 19;

/** An instruction the functional core does not implement: never executed silently. */
export class UnsupportedInstructionError extends UserError {
  constructor(
    readonly rip: number,
    readonly bytes: string,
    readonly disassembly: string,
    readonly mnemonic: string,
  ) {
    super(
      `unsupported instruction at rip 0x${rip.toString(16)}: ${disassembly}   [${bytes}] (${mnemonic}); ` +
        'the functional core does not implement it',
    );
  }
}
