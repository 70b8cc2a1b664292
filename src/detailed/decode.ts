/**
 * Decode: guest code → basic blocks of `Exec` closures, once per block start address, cached
 * until the code is written. iced-x86 decodes; the ISA table (isa/*.ts) builds the closures.
 * Disassembly for error messages comes from the same library.
 */
import { Decoder, DecoderOptions, FlowControl, Formatter, FormatterSyntax, Mnemonic, Code } from 'iced-x86';
import { hexBytes } from '../guest/disasm.js';
import { extractDecodeInfo, type DecodeInfo } from './decodeInfo.js';
import { GuestException, UnsupportedInstructionError, VEC_PF, VEC_UD } from './errors.js';
import type { GuestMemory } from './memory.js';
import { builderFor, NotImplemented, type Exec } from './isa/registry.js';
import { Event } from './state.js';
import './isa/index.js';

export const MAX_BLOCK = 64;
const MAX_INSN = 15;

export interface Block {
  start: number;
  /** Fallthrough address after the last instruction. */
  end: number;
  n: number;
  execs: Exec[];
  /** Address of each instruction (for precise faults and partial execution). */
  rips: number[];
  /** The last instruction sets rip itself (a branch, call, ret, syscall…). */
  setsRip: boolean;
  /** Virtual pages the block's bytes come from. */
  pages: number[];
  /** The last two blocks executed after this one (chaining skips the cache lookup). */
  succ1: Block | null;
  succ2: Block | null;
  /** Cleared when the code cache is invalidated: chains must not follow stale blocks. */
  valid: boolean;
  /** Instructions executed in this block while its CPU counted (AtomicCPU.countedBlocks). */
  counted: number;
  /** Whole executions so far, until the block is fused (AtomicOptions.fuseAfter). */
  runs: number;
  /**
   * All `execs` in one generated function (fuseBlock), once the block is hot. On an exception it
   * stores the index of the instruction that raised in `s.faultIndex` and rethrows.
   */
  fused: Exec | null;
}

/** Whole executions of a block before it is fused (default): cold code is not worth a compile. */
export const FUSE_AFTER = 16;

let fuseSerial = 0;

/**
 * One function calling the block's closures in order. Each call site then sees a single target,
 * so V8 can inline the instruction bodies into the block instead of dispatching through
 * `execs[i]` (one megamorphic call site for every instruction of every block).
 */
export function fuseBlock(b: Block): Exec {
  const n = b.n;
  const params = Array.from({ length: n }, (_, i) => `e${i}`);
  let body = 'let i = 0;\ntry {\n';
  for (let i = 0; i < n; i++) body += (i > 0 ? `i = ${i}; ` : '') + `e${i}(s);\n`;
  body += '} catch (x) { s.faultIndex = i; throw x; }';
  // A unique source per block: V8 caches dynamic functions by source, and a shared function
  // would share its call-site feedback (megamorphic again) with every block of this length.
  const src = `// block 0x${b.start.toString(16)} #${fuseSerial++}\nreturn function block(s) {\n${body}\n};`;
  return new Function(...params, src)(...b.execs) as Exec;
}

let formatter: Formatter | undefined;

function disassemble(d: DecodeInfo, text?: string): string {
  if (text) return text;
  const dec = new Decoder(64, d.bytes, DecoderOptions.None);
  dec.ip = BigInt(d.rip);
  const ins = dec.decode();
  formatter ??= new Formatter(FormatterSyntax.Intel);
  const out = formatter.format(ins);
  ins.free();
  dec.free();
  return out;
}

function unsupported(d: DecodeInfo, why: string, mnemonicName: string): Exec {
  return () => {
    const err = new UnsupportedInstructionError(d.rip, hexBytes(d.bytes), disassemble(d), mnemonicName);
    (err as { detail?: string }).detail = why;
    throw err;
  };
}

const MNEMONIC_NAMES = new Map<number, string>(
  Object.entries(Mnemonic)
    .filter(([, v]) => typeof v === 'number')
    .map(([k, v]) => [v as number, k.toLowerCase()]),
);

export function mnemonicName(m: Mnemonic): string {
  return MNEMONIC_NAMES.get(m) ?? `mnemonic ${m}`;
}

/** True when the ISA table has a builder for this mnemonic (the test generator's filter). */
export function isSupportedMnemonic(m: Mnemonic): boolean {
  return builderFor(m) !== undefined;
}

/** Builds the Exec for one decoded instruction (never throws: failures execute as errors). */
export function buildExec(d: DecodeInfo): Exec {
  const builder = builderFor(d.mnemonic);
  const name = mnemonicName(d.mnemonic);
  if (!builder) return unsupported(d, 'no builder', name);
  try {
    return builder(d);
  } catch (e) {
    if (e instanceof NotImplemented) return unsupported(d, e.why, name);
    throw e;
  }
}

/** gem5's magic m5op instruction: 0F 04 followed by a 16-bit function number. */
function m5opExec(func: number, next: number): Exec {
  return (s) => {
    s.rip = next;
    s.event = Event.M5op;
    s.eventArg = func;
  };
}

/** Decodes the basic block starting at `rip`. */
export function decodeBlock(mem: GuestMemory, rip: number): Block {
  const { bytes, faultAt } = mem.fetch(rip, MAX_BLOCK * 4 + MAX_INSN);
  const decoder = new Decoder(64, bytes, DecoderOptions.None);
  decoder.ip = BigInt(rip);
  const execs: Exec[] = [];
  const rips: number[] = [];
  let pc = rip;
  let setsRip = false;
  try {
    while (execs.length < MAX_BLOCK) {
      const offset = pc - rip;
      const remaining = bytes.length - offset;
      if (remaining <= 0) {
        // The next instruction starts on a page we may not fetch from.
        const at = pc;
        execs.push(() => {
          throw new GuestException(VEC_PF, 4 | 16, at);
        });
        rips.push(pc);
        setsRip = true;
        break;
      }
      if (remaining < MAX_INSN && faultAt < 0 && offset > 0) {
        // The fetch window ends here, not a page: the instruction may run past the bytes we
        // have, so end the block before it; the next block starts with it.
        break;
      }
      if (bytes[offset] === 0x0f && bytes[offset + 1] === 0x04 && remaining >= 4) {
        const func = bytes[offset + 2]! | (bytes[offset + 3]! << 8);
        execs.push(m5opExec(func, pc + 4));
        rips.push(pc);
        setsRip = true;
        break;
      }
      decoder.position = offset;
      decoder.ip = BigInt(pc);
      const ins = decoder.decode();
      try {
        if (ins.code === Code.INVALID) {
          // Truncated by an unmapped page: #PF at the first byte we could not fetch; else #UD.
          const truncated = faultAt >= 0 && remaining < MAX_INSN;
          const at = faultAt;
          execs.push(
            truncated
              ? () => {
                  throw new GuestException(VEC_PF, 4 | 16, at);
                }
              : () => {
                  throw new GuestException(VEC_UD, 0, 0);
                },
          );
          rips.push(pc);
          setsRip = true;
          break;
        }
        const flow = ins.flowControl;
        const d = extractDecodeInfo(ins, bytes.subarray(offset, offset + ins.length), flow === FlowControl.Next);
        execs.push(buildExec(d));
        rips.push(pc);
        pc = d.next;
        if (d.endsBlock) {
          setsRip = true;
          break;
        }
      } finally {
        ins.free();
      }
    }
  } finally {
    decoder.free();
  }
  const pages: number[] = [];
  for (let p = Math.floor(rip / 4096); p <= Math.floor((pc - 1) / 4096); p++) pages.push(p);
  if (pages.length === 0) pages.push(Math.floor(rip / 4096));
  return { start: rip, end: pc, n: execs.length, execs, rips, setsRip, pages, succ1: null, succ2: null, valid: true, counted: 0, runs: 0, fused: null };
}
