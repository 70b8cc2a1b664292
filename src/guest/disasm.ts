/**
 * Disassembly for error reports (guest faults, unsupported instructions). Not for the hot path:
 * iced-x86's formatter costs ~1 µs per instruction.
 */
import { createRequire } from 'node:module';

type Iced = typeof import('iced-x86');
let iced: Iced | undefined;
function load(): Iced {
  // iced-x86 is CommonJS with a wasm payload; load it only when a report needs it.
  iced ??= createRequire(import.meta.url)('iced-x86') as Iced;
  return iced;
}

export interface DecodedForReport {
  length: number;
  text: string;
}

/** Decodes one instruction at `rip` from `bytes`; null when the bytes are not a valid instruction. */
export function disassembleOne(bytes: Uint8Array, rip: bigint): DecodedForReport | null {
  if (bytes.length === 0) return null;
  const x = load();
  const decoder = new x.Decoder(64, bytes, x.DecoderOptions.None);
  decoder.ip = rip;
  const ins = decoder.decode();
  try {
    if (ins.isInvalid) return null;
    const formatter = new x.Formatter(x.FormatterSyntax.Intel);
    const text = formatter.format(ins);
    formatter.free();
    return { length: ins.length, text };
  } finally {
    ins.free();
    decoder.free();
  }
}

export function hexBytes(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');
}
