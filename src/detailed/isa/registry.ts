/**
 * The instruction table: one builder per iced-x86 mnemonic. A builder turns a decoded
 * instruction into an `Exec` closure specialised for its operands, once per instruction
 * address; executing it never decodes again. A builder that meets a form it does not handle
 * throws `NotImplemented`: the instruction then raises UnsupportedInstructionError if, and
 * only if, it is executed.
 *
 * iced gives a few unrelated instructions one mnemonic (string `movsd`/`cmpsd` and the SSE2
 * scalar-double ones; 16-bit `push`/`pop` beside the 64-bit forms in core.ts). A file that
 * handles only some forms of such a mnemonic registers them with `defineForms`: those builders
 * are tried first, and one that throws NotImplemented passes the instruction on to the next,
 * ending with the mnemonic's `define` builder if there is one.
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
const formBuilders = new Map<Mnemonic, Builder[]>();
const composed = new Map<Mnemonic, Builder>();

function list(mnemonics: Mnemonic | readonly Mnemonic[]): readonly Mnemonic[] {
  return Array.isArray(mnemonics) ? mnemonics : [mnemonics as Mnemonic];
}

export function define(mnemonics: Mnemonic | readonly Mnemonic[], build: Builder): void {
  for (const m of list(mnemonics)) {
    if (builders.has(m)) throw new Error(`mnemonic ${m} defined twice`);
    builders.set(m, build);
    composed.delete(m);
  }
}

/** Registers a builder for some forms of a mnemonic that other files may also define. */
export function defineForms(mnemonics: Mnemonic | readonly Mnemonic[], build: Builder): void {
  for (const m of list(mnemonics)) {
    const l = formBuilders.get(m) ?? [];
    l.push(build);
    formBuilders.set(m, l);
    composed.delete(m);
  }
}

function compose(forms: readonly Builder[], last: Builder | undefined): Builder {
  return (d) => {
    let why: NotImplemented | undefined;
    for (const b of forms) {
      try {
        return b(d);
      } catch (e) {
        if (!(e instanceof NotImplemented)) throw e;
        why = e;
      }
    }
    if (last) return last(d);
    throw why ?? new NotImplemented('no builder for this form');
  };
}

export function builderFor(m: Mnemonic): Builder | undefined {
  const forms = formBuilders.get(m);
  if (!forms) return builders.get(m);
  let b = composed.get(m);
  if (!b) {
    b = compose(forms, builders.get(m));
    composed.set(m, b);
  }
  return b;
}

export function definedMnemonics(): Mnemonic[] {
  return [...new Set([...builders.keys(), ...formBuilders.keys()])];
}
