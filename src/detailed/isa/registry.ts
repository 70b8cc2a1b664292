/**
 * The instruction table: one builder per iced-x86 mnemonic. A builder turns a decoded
 * instruction into an `Exec` closure specialised for its operands, once per instruction
 * address; executing it never decodes again. A builder that meets a form it does not handle
 * throws `NotImplemented`: the instruction then raises UnsupportedInstructionError if, and
 * only if, it is executed.
 */
import type { Mnemonic } from 'iced-x86';
import type { DecodeInfo } from '../decodeInfo.js';
import type { CpuState } from '../state.js';

export type Exec = (s: CpuState) => void;
export type Builder = (d: DecodeInfo) => Exec;

export class NotImplemented {
  constructor(readonly why: string) {}
}

const builders = new Map<Mnemonic, Builder>();

export function define(mnemonics: Mnemonic | readonly Mnemonic[], build: Builder): void {
  for (const m of Array.isArray(mnemonics) ? mnemonics : [mnemonics as Mnemonic]) {
    if (builders.has(m)) throw new Error(`mnemonic ${m} defined twice`);
    builders.set(m, build);
  }
}

export function builderFor(m: Mnemonic): Builder | undefined {
  return builders.get(m);
}

export function definedMnemonics(): Mnemonic[] {
  return [...builders.keys()];
}
