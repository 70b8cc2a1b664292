/**
 * The functional core's machinery rather than its ISA: decode happens once per block and is
 * redone after the code is written; an instruction the core lacks is a typed error carrying
 * rip, bytes, disassembly and mnemonic; instruction counts are exact.
 */
import { describe, expect, it } from 'vitest';
import { AtomicCPU } from '../../src/detailed/atomicCpu.js';
import { UnsupportedInstructionError } from '../../src/detailed/errors.js';
import { AddressSpace } from '../../src/guest/addressSpace.js';
import { PROT_EXEC, PROT_READ, PROT_WRITE } from '../../src/guest/pageTables.js';
import { allocatePhysicalMemory } from '../../src/guest/physmem.js';
import { initialThreadContext } from '../../src/guest/threadContext.js';

const CODE = 0x40_0000;
const STACK = 0x70_0000;

function machine(hex: string, prot = PROT_READ | PROT_EXEC, fuseAfter?: number) {
  const aspace = new AddressSpace(allocatePhysicalMemory(16 << 20, 'shared'));
  aspace.mapFixed(CODE, 0x1000, prot, 'mmap', '[code]');
  aspace.mapFixed(STACK, 0x2000, PROT_READ | PROT_WRITE, 'mmap', '[stack]');
  aspace.writeUnchecked(CODE, Buffer.from(hex.replace(/\s+/g, ''), 'hex'));
  const cpu = new AtomicCPU({ aspace, ...(fuseAfter !== undefined ? { fuseAfter } : {}) });
  cpu.setThreadContext(initialThreadContext(BigInt(CODE), BigInt(STACK + 0x1000)));
  return cpu;
}

describe('decode cache', () => {
  it('decodes each block once however often it runs, and counts instructions exactly', () => {
    // mov ecx, 1000; L: add eax, 1; dec ecx; jnz L; ud2
    const cpu = machine('b9 e8030000  83c001  ffc9  75f9  0f0b');
    const out = cpu.run(1e6);
    expect(out.kind).toBe('faulted');
    expect(cpu.s.g[0]).toBe(1000);
    expect(cpu.instructions).toBe(1 + 3 * 1000);
    expect(cpu.blocksDecoded).toBeLessThanOrEqual(4);
  });

  it('re-decodes code the program overwrote (self-modifying code)', () => {
    // L: mov eax, 1            b8 01000000        (at CODE)
    //    cmp ebx, 0; jne done   83fb00 750c
    //    inc ebx                ffc3
    //    mov byte [CODE+1], 7   c60425 01004000 07
    //    jmp L                  ebea
    // done: ud2
    const cpu = machine('b801000000 83fb00 750c ffc3 c6042501004000 07 ebea 0f0b', PROT_READ | PROT_WRITE | PROT_EXEC);
    const out = cpu.run(100);
    expect(out.kind).toBe('faulted');
    expect(cpu.s.g[0]).toBe(7);
    expect(cpu.blocksDecoded).toBeGreaterThanOrEqual(3);
  });
});

describe('fused blocks', () => {
  // mov ecx, 100; mov ebx, STACK
  // L: add eax, 1; mov edx, [rbx]; add ebx, 0x100; dec ecx; jnz L
  // The stack mapping is 0x2000 long: iteration 33 faults on its second instruction, long after
  // the loop block was fused.
  const LOOP = 'b9 64000000  bb 00007000  83c001  8b13  81c3 00010000  ffc9  75f1';
  const L_LOAD = CODE + 10 + 3;

  for (const fuseAfter of [2, Infinity]) {
    it(`a fault inside a hot block stops at the exact instruction (fuseAfter ${fuseAfter})`, () => {
      const cpu = machine(LOOP, PROT_READ | PROT_EXEC, fuseAfter);
      const out = cpu.run(1e6);
      expect(out.kind).toBe('faulted');
      if (out.kind !== 'faulted') return;
      expect(out.report.signal).toBe('SIGSEGV');
      expect(out.report.faultAddress).toBe(`0x${(STACK + 0x2000).toString(16)}`);
      expect(out.report.rip).toBe(`0x${L_LOAD.toString(16)}`);
      expect(cpu.s.rip).toBe(L_LOAD);
      // 2 set-up moves, 32 whole iterations of 5, then the add of iteration 33.
      expect(cpu.instructions).toBe(2 + 32 * 5 + 1);
      expect(cpu.s.g[0]).toBe(33);
      expect(cpu.blocksFused).toBe(fuseAfter === 2 ? 1 : 0);
    });
  }

  it('budgets ending inside a fused block stop at the exact instruction', () => {
    const fused = machine(LOOP, PROT_READ | PROT_EXEC, 1);
    const plain = machine(LOOP, PROT_READ | PROT_EXEC, Infinity);
    // Uneven budgets: some end mid-block, some on block boundaries.
    for (const n of [3, 7, 1, 11, 5, 40, 2, 13]) {
      expect(fused.run(n).kind).toBe('limit');
      expect(plain.run(n).kind).toBe('limit');
      expect(fused.s.rip).toBe(plain.s.rip);
      expect(fused.instructions).toBe(plain.instructions);
      expect(Array.from(fused.s.g)).toEqual(Array.from(plain.s.g));
    }
    expect(fused.blocksFused).toBeGreaterThan(0);
  });
});

describe('unsupported instructions', () => {
  it('raise UnsupportedInstructionError with rip, bytes, disassembly and mnemonic, only when executed', () => {
    // nop; vaddps ymm0, ymm1, ymm2 (AVX: not implemented)
    const cpu = machine('90 c5f458c2 0f0b');
    let err: unknown;
    try {
      cpu.run(10);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UnsupportedInstructionError);
    const u = err as UnsupportedInstructionError;
    expect(u.rip).toBe(CODE + 1);
    expect(u.bytes).toBe('c5 f4 58 c2');
    expect(u.disassembly).toBe('vaddps ymm0,ymm1,ymm2');
    expect(u.mnemonic).toBe('vaddps');
    expect(u.message).toMatch(/rip 0x400001/);
    expect(cpu.instructions).toBe(1);
  });

  it('an unsupported instruction that is never reached does not stop the program', () => {
    // jmp over; vaddps ymm0,ymm1,ymm2; over: ud2
    const cpu = machine('eb04 c5f458c2 0f0b');
    const out = cpu.run(10);
    expect(out.kind).toBe('faulted');
    if (out.kind === 'faulted') expect(out.report.signal).toBe('SIGILL');
  });
});
