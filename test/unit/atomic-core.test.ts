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

function machine(hex: string, prot = PROT_READ | PROT_EXEC) {
  const aspace = new AddressSpace(allocatePhysicalMemory(16 << 20, 'shared'));
  aspace.mapFixed(CODE, 0x1000, prot, 'mmap', '[code]');
  aspace.mapFixed(STACK, 0x2000, PROT_READ | PROT_WRITE, 'mmap', '[stack]');
  aspace.writeUnchecked(CODE, Buffer.from(hex.replace(/\s+/g, ''), 'hex'));
  const cpu = new AtomicCPU({ aspace });
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
