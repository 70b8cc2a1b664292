/**
 * The random-sequence generator without KVM: reproducible from (seed, index), every form of the
 * coverage table can be generated and decodes back as meant, the undefined-flags dataflow
 * masks what the architecture leaves undefined (and only that), and no generated instruction
 * reads a flag that may be undefined.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Code, Instruction, Register } from 'iced-x86';
import type { CpuidEntry } from '../../src/kvm/cpuid.js';
import { allForms, selectForms, formByName, type Form } from '../../src/difftest/forms.js';
import { encodeSnippet, SnippetGenerator, type Insn, type Item } from '../../src/difftest/generator.js';
import { AF, CF, OF, PF, SF, ZF } from '../../src/difftest/flagsMask.js';
import { undefinedFlagsMarkdown } from '../../src/difftest/flagsDoc.js';
import { Rng } from '../../src/difftest/rng.js';
import { SNIPPET_CODE_ADDR } from '../../src/difftest/layout.js';
import { ROOT } from '../support/workloads.js';

/** A CPU that has every optional feature the table uses (SSE3…SSE4.2, POPCNT, LZCNT, BMI1/2, ADX, MOVBE). */
const EVERYTHING: CpuidEntry[] = [
  { leaf: 0, subleaf: 0, eax: 0xd, ebx: 0, ecx: 0, edx: 0 },
  { leaf: 1, subleaf: 0, eax: 0, ebx: 0, ecx: 0xffffffff, edx: 0xffffffff },
  { leaf: 7, subleaf: 0, eax: 0, ebx: 0xffffffff, ecx: 0, edx: 0 },
  { leaf: 0x80000000, subleaf: 0, eax: 0x80000001, ebx: 0, ecx: 0, edx: 0 },
  { leaf: 0x80000001, subleaf: 0, eax: 0, ebx: 0, ecx: 0xffffffff, edx: 0xffffffff },
];

const test = (build: () => Instruction): Insn => ({ role: 'test', build });
const seq = (...insns: Insn[]): Item => ({ kind: 'seq', insns });

describe('difftest generator', () => {
  const forms = selectForms({ cpuid: EVERYTHING, supports: () => true }).forms;

  it('the PRNG is a fixed function of (seed, stream) on every machine', () => {
    const r = new Rng(1, 0);
    const first = [r.u32(), r.u32(), r.u32()];
    expect(first).toEqual([...[new Rng(1, 0)].flatMap((x) => [x.u32(), x.u32(), x.u32()])]);
    expect(new Rng(1, 1).u32()).not.toBe(first[0]);
    expect(new Rng(2, 0).u32()).not.toBe(first[0]);
    const x = new Rng(99, 7);
    for (let i = 0; i < 1000; i++) {
      const v = x.below(10);
      expect(v >= 0 && v < 10).toBe(true);
    }
  });

  it('a sequence is a pure function of (seed, index): the same bytes and initial state every time', () => {
    const g1 = new SnippetGenerator(forms, EVERYTHING);
    const g2 = new SnippetGenerator(forms, EVERYTHING);
    for (const i of [0, 1, 17, 999]) {
      const a = g1.generate(42, i);
      const b = g2.generate(42, i);
      expect(Buffer.from(b.encoded!.code).equals(Buffer.from(a.encoded!.code))).toBe(true);
      expect(b.initial.context).toEqual(a.initial.context);
      expect(Buffer.from(b.initial.scratch).equals(Buffer.from(a.initial.scratch))).toBe(true);
      expect(Buffer.from(b.initial.stack).equals(Buffer.from(a.initial.stack))).toBe(true);
    }
    expect(Buffer.from(g1.generate(42, 1).encoded!.code).equals(Buffer.from(g1.generate(42, 2).encoded!.code))).toBe(false);
    expect(Buffer.from(g1.generate(42, 1).encoded!.code).equals(Buffer.from(g1.generate(43, 1).encoded!.code))).toBe(false);
  });

  it('covers what the issue lists: integer, shifts, mul/div, bit ops, strings, stack, flow, SSE/SSE2 moves, integer SIMD, float, conversions, shuffles', () => {
    const mnemonics = new Set(allForms().map((f) => f.mnemonicName.toLowerCase()));
    for (const m of [
      'mov', 'movzx', 'movsx', 'movsxd', 'lea', 'add', 'adc', 'sub', 'sbb', 'and', 'or', 'xor', 'cmp', 'test', 'inc', 'dec', 'neg', 'not',
      'shl', 'shr', 'sar', 'rol', 'ror', 'rcl', 'rcr', 'shld', 'shrd', 'mul', 'imul', 'div', 'idiv', 'cmovne', 'sete', 'jne', 'jmp',
      'call', 'push', 'pop', 'leave', 'xchg', 'cmpxchg', 'xadd', 'bt', 'bts', 'btr', 'btc', 'bsf', 'bsr', 'tzcnt', 'lzcnt', 'popcnt',
      'andn', 'bswap', 'cbw', 'cwde', 'cdqe', 'cwd', 'cdq', 'cqo', 'movsb', 'stosq', 'lodsd', 'cmpsb', 'scasw', 'nop', 'endbr64', 'cpuid',
      'movd', 'movq', 'movdqa', 'movdqu', 'movaps', 'movups', 'movapd', 'movupd', 'movss', 'movsd', 'movhps', 'movlps',
      'pxor', 'por', 'pand', 'pandn', 'paddb', 'psubq', 'pcmpeqb', 'pcmpgtd', 'pmovmskb', 'pshufd', 'punpcklbw', 'pslldq', 'psrldq',
      'psllw', 'pminub', 'pmaxub', 'addsd', 'subps', 'mulpd', 'divss', 'sqrtsd', 'minps', 'maxsd', 'cmpps', 'comisd', 'ucomiss',
      'andpd', 'andnps', 'orps', 'xorpd', 'cvtsi2sd', 'cvtsi2ss', 'cvttsd2si', 'cvtsd2si', 'cvtss2sd', 'cvtsd2ss', 'cvtdq2pd',
      'shufps', 'unpcklps', 'unpckhpd', 'ldmxcsr', 'stmxcsr', 'fnstcw', 'fldcw',
    ]) {
      expect(mnemonics, m).toContain(m);
    }
  });

  it('every form of the table is generated, encodes and decodes back as the form it is', () => {
    const filler = formByName('Add_rm64_r64')!;
    const failures: string[] = [];
    for (const form of allForms()) {
      const list: Form[] = [form, { ...filler, weight: 1e-9 }];
      const gen = new SnippetGenerator(list, EVERYTHING, { minItems: 1, maxItems: 3 });
      let found = false;
      try {
        for (let i = 0; i < 6 && !found; i++) {
          const s = gen.generate(1, i);
          found = s.encoded!.insns.some((x) => x.form?.code === form.code);
          expect(s.encoded!.undefinedReads).toEqual([]);
        }
      } catch (e) {
        failures.push(`${form.name}: ${(e as Error).message}`);
        continue;
      }
      if (!found) failures.push(`${form.name}: never emitted`);
    }
    expect(failures).toEqual([]);
  });

  it('1000 mixed sequences: at most 20 items, code fits, nothing reads a possibly undefined flag', () => {
    const gen = new SnippetGenerator(forms, EVERYTHING);
    const groups = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const s = gen.generate(3, i);
      expect(s.items.length).toBeLessThanOrEqual(20);
      expect(s.encoded!.undefinedReads).toEqual([]);
      expect(s.encoded!.insns.at(-1)?.role).not.toBe(undefined);
      for (const x of s.encoded!.insns) if (x.form) groups.add(x.form.group);
    }
    expect([...groups].sort()).toEqual([...new Set(forms.map((f) => f.group))].sort());
  });

  it('masks a flag only while its last writer left it undefined', () => {
    const imul = test(() => Instruction.createRegReg(Code.Imul_r64_rm64, Register.RAX, Register.RBX));
    const add = test(() => Instruction.createRegReg(Code.Add_rm64_r64, Register.RAX, Register.RBX));
    const bt = test(() => Instruction.createRegI32(Code.Bt_rm64_imm8, Register.RAX, 3));
    const shlCl = test(() => Instruction.createRegReg(Code.Shl_rm32_CL, Register.EAX, Register.CL));
    const shl0 = test(() => Instruction.createRegI32(Code.Shl_rm32_imm8, Register.EAX, 0));
    const setz = test(() => Instruction.createReg(Code.Sete_rm8, Register.DL));
    const end = (items: Item[]) => {
      const e = encodeSnippet(items);
      return e.undefinedBefore.get(e.terminator)!;
    };
    expect(end([seq(imul)])).toBe(PF | AF | ZF | SF);
    expect(end([seq(imul, add)])).toBe(0);
    expect(end([seq(imul, bt)])).toBe(PF | AF | ZF | SF | OF); // bt: CF defined, ZF untouched (still imul's)
    expect(end([seq(add, shlCl)])).toBe(AF | OF); // by CL: OF/AF undefined when it writes
    expect(end([seq(imul, shlCl)])).toBe(PF | AF | ZF | SF | OF); // …and a count of 0 writes nothing
    expect(end([seq(imul, shl0)])).toBe(PF | AF | ZF | SF); // an immediate 0 is known to write nothing
    expect(encodeSnippet([seq(imul, setz)]).undefinedReads).toHaveLength(1);
    expect(encodeSnippet([seq(add, setz)]).undefinedReads).toHaveLength(0);
    expect(CF).toBe(1);
  });

  it('a forward branch may or may not run its body: its undefined flags count after the label', () => {
    const imul = test(() => Instruction.createRegReg(Code.Imul_r64_rm64, Register.RAX, Register.RBX));
    const add = test(() => Instruction.createRegReg(Code.Add_rm64_r64, Register.RAX, Register.RBX));
    const jne: Insn = { role: 'flow', build: (l) => Instruction.createBranch(Code.Jne_rel8_64, l(1)) };
    const e = encodeSnippet([seq(add), { kind: 'skip', pre: [], branch: jne, conditional: true, label: 1, body: [seq(imul)] }]);
    expect(e.undefinedBefore.get(e.terminator)).toBe(PF | AF | ZF | SF);
    expect(e.insns[0]!.addr).toBe(SNIPPET_CODE_ADDR);
    expect(e.insns.map((x) => x.text)).toEqual(['add rax,rbx', `jne short ${(SNIPPET_CODE_ADDR + 9).toString(16).toUpperCase().padStart(16, '0')}h`, 'imul rax,rbx', 'ud2']);
  });

  it('docs/undefined-flags.md is the table the comparison uses (regenerate with npm run difftest -- --flags-doc)', () => {
    const doc = readFileSync(path.join(ROOT, 'docs/undefined-flags.md'), 'utf8');
    expect(doc).toBe(undefinedFlagsMarkdown(allForms()));
  });
});
