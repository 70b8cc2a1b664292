/**
 * Guest faults as Linux would deliver them: which signal an exception vector becomes, and the
 * report the user sees (signal, fault address, rip, instruction bytes and disassembly).
 */
import { disassembleOne, hexBytes } from './disasm.js';

export const SIGNALS = {
  SIGILL: 4,
  SIGTRAP: 5,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGSEGV: 11,
} as const;
export type SignalName = keyof typeof SIGNALS;

export const VECTOR_NAMES: Record<number, string> = {
  0: '#DE divide error',
  1: '#DB debug',
  3: '#BP breakpoint',
  4: '#OF overflow',
  5: '#BR bound range',
  6: '#UD invalid opcode',
  7: '#NM device not available',
  8: '#DF double fault',
  10: '#TS invalid TSS',
  11: '#NP segment not present',
  12: '#SS stack fault',
  13: '#GP general protection',
  14: '#PF page fault',
  16: '#MF x87 floating-point',
  17: '#AC alignment check',
  18: '#MC machine check',
  19: '#XM SIMD floating-point',
};

/** Linux's mapping from exception vector to signal (arch/x86/kernel/traps.c). */
export function signalForVector(vector: number): SignalName {
  switch (vector) {
    case 0:
    case 16:
    case 19:
      return 'SIGFPE';
    case 1:
    case 3:
      return 'SIGTRAP';
    case 6:
      return 'SIGILL';
    case 17:
      return 'SIGBUS';
    default:
      return 'SIGSEGV';
  }
}

export interface GuestFaultReport {
  signal: SignalName;
  signalNumber: number;
  vector: number;
  vectorName: string;
  errorCode: number;
  /** The address that faulted (CR2 for a page fault; rip for SIGILL/SIGFPE; 0 for #GP), hex. */
  faultAddress: string;
  rip: string;
  /** Up to 15 bytes at rip, hex; empty when rip itself is unmapped. */
  bytes: string;
  disassembly: string;
  /** Page-fault detail: 'read'|'write'|'exec', 'not present'|'protection'. */
  access?: string;
}

export function buildFaultReport(
  vector: number,
  errorCode: bigint,
  rip: bigint,
  cr2: bigint,
  code: Uint8Array,
): GuestFaultReport {
  const signal = signalForVector(vector);
  const dis = disassembleOne(code, rip);
  const faultAddress = vector === 14 ? cr2 : vector === 13 ? 0n : rip;
  const report: GuestFaultReport = {
    signal,
    signalNumber: SIGNALS[signal],
    vector,
    vectorName: VECTOR_NAMES[vector] ?? `vector ${vector}`,
    errorCode: Number(errorCode),
    faultAddress: `0x${faultAddress.toString(16)}`,
    rip: `0x${rip.toString(16)}`,
    bytes: hexBytes(code.subarray(0, dis?.length ?? Math.min(code.length, 15))),
    disassembly: dis?.text ?? '(undecodable)',
  };
  if (vector === 14) {
    const e = Number(errorCode);
    report.access = `${e & 16 ? 'exec' : e & 2 ? 'write' : 'read'}, ${e & 1 ? 'protection' : 'not present'}`;
  }
  return report;
}

export function formatFaultReport(r: GuestFaultReport): string {
  const lines = [
    `guest killed by ${r.signal} (${r.vectorName}${r.access ? `, ${r.access}` : ''})`,
    `  fault address: ${r.faultAddress}`,
    `  rip:           ${r.rip}`,
    `  instruction:   ${r.disassembly}${r.bytes ? `   [${r.bytes}]` : ''}`,
  ];
  return lines.join('\n');
}
