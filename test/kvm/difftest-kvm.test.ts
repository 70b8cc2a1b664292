/**
 * The oracle side of differential testing, on KVM alone: the snippet runner gives known results
 * for known code, reports faults precisely and is deterministic; single-stepping executes one
 * instruction per step (a rep string instruction as one, pushf without the trap flag), agrees
 * with native runs at every syscall, and stops at syscalls before serving them.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Code, Instruction, MemoryOperand, Register } from 'iced-x86';
import { initialThreadContext, Gpr, type ThreadContext } from '../../src/guest/threadContext.js';
import { KvmSnippetRunner } from '../../src/difftest/kvmSnippet.js';
import { SCRATCH_ADDR, SCRATCH_SIZE, SNIPPET_CODE_ADDR, STACK_ADDR, STACK_SIZE, STACK_START } from '../../src/difftest/layout.js';
import { selectForms } from '../../src/difftest/forms.js';
import { SnippetGenerator, snippetInput } from '../../src/difftest/generator.js';
import { bootKvmInProcess, type StepResult } from '../../src/kvm/stepper.js';
import { UD2, type SnippetInput, type SnippetResult } from '../../src/difftest/snippetMemory.js';
import { describeKvm } from './support.js';
import { assemble, TINY_CODE, TINY_DATA, tinyElf } from './difftest-support.js';
import { runNative, workloadPath } from '../support/workloads.js';

const ZF = 0x40n;
const TF = 0x100n;

function input(code: Uint8Array, tc?: Partial<ThreadContext>): SnippetInput {
  const context = { ...initialThreadContext(BigInt(SNIPPET_CODE_ADDR), BigInt(STACK_START)), ...tc };
  return { code: Uint8Array.from([...code, ...UD2]), context, scratch: new Uint8Array(SCRATCH_SIZE), stack: new Uint8Array(STACK_SIZE) };
}

function serialize(r: SnippetResult): string {
  return JSON.stringify(r, (_k, v: unknown) =>
    typeof v === 'bigint' ? v.toString(16) : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v,
  );
}

describeKvm('difftest: snippets on KVM', () => {
  let kvm: KvmSnippetRunner;
  beforeAll(() => {
    kvm = KvmSnippetRunner.create();
  });
  afterAll(() => kvm.close());

  it('mov rax, 5; add rax, rax ends at the terminating ud2 with rax = 10 and the flags of the add', () => {
    const code = assemble(SNIPPET_CODE_ADDR, [
      Instruction.createRegI32(Code.Mov_rm64_imm32, Register.RAX, 5),
      Instruction.createRegReg(Code.Add_rm64_r64, Register.RAX, Register.RAX),
    ]);
    const r = kvm.run(input(code, { rflags: 0x2c3n }));
    expect(r.end.vector).toBe(6);
    expect(r.end.rip).toBe(BigInt(SNIPPET_CODE_ADDR + code.length));
    expect(r.final.context.rip).toBe(r.end.rip);
    expect(r.final.context.gpr[Gpr.rax]).toBe(10n);
    expect(r.final.context.rflags & 0x8d5n).toBe(0x4n); // PF only (10 = 0b1010: even parity)
    expect(r.final.context.gpr[Gpr.rsp]).toBe(BigInt(STACK_START));
  });

  it('takes registers, xmm, mxcsr, segment bases and memory from the input and returns them', () => {
    const gpr = Array.from({ length: 16 }, (_, i) => 0x1111_0000_0000_0000n * BigInt(i % 15 + 1) + BigInt(i));
    gpr[Gpr.rsp] = BigInt(STACK_START);
    const xmm = Uint8Array.from({ length: 256 }, (_, i) => (i * 7) & 0xff);
    const code = assemble(SNIPPET_CODE_ADDR, [
      // rbx = [scratch+8]; [scratch+16] = rcx; xmm3 += xmm4 (bytes); push rdx; fs:[0] → r8
      Instruction.createRegMem(Code.Mov_r64_rm64, Register.RBX, new MemoryOperand(Register.None, Register.None, 1, BigInt(SCRATCH_ADDR + 8), 8, false, Register.None)),
      Instruction.createMemReg(Code.Mov_rm64_r64, new MemoryOperand(Register.None, Register.None, 1, BigInt(SCRATCH_ADDR + 16), 8, false, Register.None), Register.RCX),
      Instruction.createRegReg(Code.Paddb_xmm_xmmm128, Register.XMM3, Register.XMM4),
      Instruction.createReg(Code.Push_r64, Register.RDX),
      Instruction.createRegMem(Code.Mov_r64_rm64, Register.R8, new MemoryOperand(Register.None, Register.None, 1, 0n, 8, false, Register.FS)),
    ]);
    const inp = input(code, { gpr, xmm, mxcsr: 0x7f80, fsBase: BigInt(SCRATCH_ADDR + 0x100) });
    new DataView(inp.scratch.buffer).setBigUint64(8, 0x0123456789abcdefn, true);
    new DataView(inp.scratch.buffer).setBigUint64(0x100, 0xfeedfacecafebeefn, true);
    const r = kvm.run(inp);
    const tc = r.final.context;
    expect(r.end.vector).toBe(6);
    expect(tc.gpr[Gpr.rbx]).toBe(0x0123456789abcdefn);
    expect(new DataView(r.final.scratch.buffer).getBigUint64(16, true)).toBe(gpr[Gpr.rcx]);
    expect(tc.gpr[Gpr.rsp]).toBe(BigInt(STACK_START - 8));
    expect(new DataView(r.final.stack.buffer).getBigUint64(STACK_START - 8 - STACK_ADDR, true)).toBe(gpr[Gpr.rdx]);
    expect(tc.gpr[Gpr.r8]).toBe(0xfeedfacecafebeefn);
    expect(tc.fsBase).toBe(BigInt(SCRATCH_ADDR + 0x100));
    expect(tc.mxcsr).toBe(0x7f80);
    for (let i = 0; i < 16; i++) expect(tc.xmm[3 * 16 + i]).toBe((xmm[3 * 16 + i]! + xmm[4 * 16 + i]!) & 0xff);
    expect(tc.xmm.subarray(0, 48)).toEqual(xmm.subarray(0, 48));
  });

  it('a divide error is the result: vector 0 at the div, state at the div', () => {
    const code = assemble(SNIPPET_CODE_ADDR, [
      Instruction.createRegReg(Code.Xor_r32_rm32, Register.ECX, Register.ECX),
      Instruction.createReg(Code.Div_rm64, Register.RCX),
    ]);
    const r = kvm.run(input(code));
    expect(r.end).toEqual({ vector: 0, errorCode: 0, rip: BigInt(SNIPPET_CODE_ADDR + 2), faultAddress: 0n });
    expect(r.final.context.rip).toBe(BigInt(SNIPPET_CODE_ADDR + 2));
    expect(r.final.context.rflags & ZF).toBe(ZF); // from the xor
  });

  it('a page fault reports the address and the error code (write, user, not present)', () => {
    const code = assemble(SNIPPET_CODE_ADDR, [
      Instruction.createMemReg(Code.Mov_rm64_r64, new MemoryOperand(Register.None, Register.None, 1, 0x1234_5000n, 8, false, Register.None), Register.RAX),
    ]);
    const r = kvm.run(input(code));
    expect(r.end).toEqual({ vector: 14, errorCode: 6, rip: BigInt(SNIPPET_CODE_ADDR), faultAddress: 0x1234_5000n });
  });

  it('is deterministic: 300 generated snippets give identical results twice', () => {
    const sel = selectForms({ cpuid: kvm.cpuid, supports: () => true });
    const gen = new SnippetGenerator(sel.forms, kvm.cpuid);
    for (let i = 0; i < 300; i++) {
      const s = gen.generate(11, i);
      const inp = snippetInput(s, s.encoded!);
      expect(serialize(kvm.run(inp))).toBe(serialize(kvm.run(inp)));
    }
  });

  it('generated snippets end at their terminator unless they divide (KVM accepts what the generator makes)', () => {
    const sel = selectForms({ cpuid: kvm.cpuid, supports: () => true });
    const gen = new SnippetGenerator(sel.forms, kvm.cpuid);
    const ends: Record<string, number> = {};
    for (let i = 0; i < 1000; i++) {
      const s = gen.generate(5, i);
      const r = kvm.run(snippetInput(s, s.encoded!));
      const key = r.end.vector === 6 && r.end.rip === BigInt(s.encoded!.terminator) ? 'done' : `vector ${r.end.vector}`;
      ends[key] = (ends[key] ?? 0) + 1;
    }
    expect(Object.keys(ends).sort()).toEqual(expect.arrayContaining(['done']));
    for (const k of Object.keys(ends)) expect(['done', 'vector 0']).toContain(k);
    expect(ends.done).toBeGreaterThan(950);
  });
});

/** exit(status) as the end of a tiny program. */
const exitWith = (status: number) => [
  Instruction.createRegI32(Code.Mov_r32_imm32, Register.EAX, 60),
  Instruction.createRegI32(Code.Mov_r32_imm32, Register.EDI, status),
  Instruction.create(Code.Syscall),
];

function quietIo() {
  const out: Buffer[] = [];
  return { out, io: { write: (_fd: 1 | 2, b: Uint8Array) => void out.push(Buffer.from(b)), read: () => new Uint8Array(0) } };
}

describeKvm('difftest: single-stepping on KVM', () => {
  it('steps one instruction at a time: a rep movsb is one step, pushf pushes no TF, exit ends it', () => {
    const code = assemble(TINY_CODE, [
      Instruction.create(Code.Pushfq),
      Instruction.createReg(Code.Pop_r64, Register.RBX),
      Instruction.createRegU64(Code.Mov_r64_imm64, Register.RSI, BigInt(TINY_DATA)),
      Instruction.createRegU64(Code.Mov_r64_imm64, Register.RDI, BigInt(TINY_DATA + 0x100)),
      Instruction.createRegI32(Code.Mov_r32_imm32, Register.ECX, 16),
      Instruction.createRepMovsb(64),
      Instruction.createRegMem(Code.Mov_r64_rm64, Register.R12, new MemoryOperand(Register.None, Register.None, 1, BigInt(TINY_DATA + 0x108), 8, false, Register.None)),
      ...exitWith(7),
    ]);
    const data = Uint8Array.from({ length: 16 }, (_, i) => i + 1);
    const { io } = quietIo();
    const k = bootKvmInProcess({ program: tinyElf(code, data), argv: ['tiny'], envp: [], io, memSize: 32 * 1024 * 1024 });
    try {
      const steps: StepResult[] = [];
      for (let i = 0; i < 20; i++) {
        const s = k.stepper.stepInstruction();
        steps.push(s);
        if (s.kind !== 'stepped') break;
      }
      expect(steps.map((s) => s.kind)).toEqual([...Array(9).fill('stepped'), 'exited']);
      const ctx = (i: number) => (steps[i] as Extract<StepResult, { kind: 'stepped' }>).context;
      expect(ctx(1).gpr[Gpr.rbx]! & TF).toBe(0n); // pushf under single-step pushed the program's flags
      expect(ctx(1).gpr[Gpr.rbx]! & 0x200n).toBe(0x200n);
      expect(ctx(5).gpr[Gpr.rcx]).toBe(0n); // all 16 iterations in one step
      expect(ctx(5).gpr[Gpr.rdi]).toBe(BigInt(TINY_DATA + 0x110));
      expect(ctx(6).gpr[Gpr.r12]).toBe(0x100f0e0d0c0b0a09n);
      for (const s of steps.slice(0, 9)) expect((s as { context: ThreadContext }).context.rflags & TF).toBe(0n);
      expect(steps[9]).toEqual({ kind: 'exited', status: 7 });
      expect(k.stepper.instructions).toBe(10);
      expect(k.stepper.traps).toBeGreaterThanOrEqual(9 + 15);
    } finally {
      k.close();
    }
  });

  it('stops at syscalls before serving them, in single-step and at full speed, with the same state', () => {
    const code = assemble(TINY_CODE, [
      Instruction.createRegI32(Code.Mov_r32_imm32, Register.EAX, 39), // getpid
      Instruction.create(Code.Syscall),
      Instruction.createRegReg(Code.Mov_r64_rm64, Register.R13, Register.RAX),
      ...exitWith(3),
    ]);
    const prog = tinyElf(code);
    const run = (stepping: boolean) => {
      const { io } = quietIo();
      const k = bootKvmInProcess({ program: prog, argv: ['tiny'], envp: [], io, memSize: 32 * 1024 * 1024 });
      try {
        const out: StepResult[] = [];
        for (let i = 0; i < 10; i++) {
          const s = stepping ? k.stepper.stepInstruction({ stopAtSyscalls: true }) : k.stepper.runToSyscall();
          if (s.kind !== 'stepped') out.push(s);
          if (s.kind === 'exited' || s.kind === 'faulted') break;
        }
        return out;
      } finally {
        k.close();
      }
    };
    const stepped = run(true);
    const native = run(false);
    expect(stepped.map((s) => s.kind)).toEqual(['syscall', 'syscall', 'exited']);
    expect(native.map((s) => s.kind)).toEqual(['syscall', 'syscall', 'exited']);
    const first = stepped[0] as Extract<StepResult, { kind: 'syscall' }>;
    expect(first.nr).toBe(39);
    // Just after the syscall instruction: rip = rcx = next instruction, r11 = rflags; rax not yet served.
    expect(first.context.rip).toBe(BigInt(TINY_CODE + 7));
    expect(first.context.gpr[Gpr.rcx]).toBe(first.context.rip);
    expect(first.context.gpr[Gpr.r11]! & ~0x10000n).toBe(first.context.rflags);
    expect(first.context.gpr[Gpr.rax]).toBe(39n);
    for (let i = 0; i < 2; i++) {
      const a = stepped[i] as Extract<StepResult, { kind: 'syscall' }>;
      const b = native[i] as Extract<StepResult, { kind: 'syscall' }>;
      expect(a.nr).toBe(b.nr);
      expect({ ...a.context, rflags: a.context.rflags & ~0x10000n }).toEqual({ ...b.context, rflags: b.context.rflags & ~0x10000n });
    }
    expect(stepped[2]).toEqual({ kind: 'exited', status: 3 });
  });

  it('a workload single-stepped to its exit prints its native output (every syscall served between steps)', () => {
    const out: Buffer[] = [];
    const k = bootKvmInProcess({
      program: workloadPath('matmul_fp'),
      argv: ['matmul_fp', '8'],
      envp: [],
      io: { write: (_fd, b) => void out.push(Buffer.from(b)), read: () => new Uint8Array(0) },
    });
    try {
      let last: StepResult | undefined;
      const t0 = performance.now();
      for (let i = 0; i < 200_000; i++) {
        last = k.stepper.stepInstruction();
        if (last.kind !== 'stepped') break;
      }
      const us = ((performance.now() - t0) * 1000) / k.stepper.instructions;
      expect(last).toEqual({ kind: 'exited', status: 0 });
      expect(Buffer.concat(out).toString()).toBe(runNative('matmul_fp', ['8']).stdout.toString());
      expect(k.stepper.instructions).toBeGreaterThan(5000);
      expect(us).toBeLessThan(1000); // measured ~45-70 µs per step here
    } finally {
      k.close();
    }
  });
});
