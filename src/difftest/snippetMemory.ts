/**
 * The snippet guest's memory: an address space with the code, scratch and stack areas mapped
 * at their fixed addresses (layout.ts). KVM and the JS cores can share one (the same physical
 * buffer) because every run starts by rewriting all three areas.
 */
import { AddressSpace } from '../guest/addressSpace.js';
import { PROT_EXEC, PROT_READ, PROT_WRITE } from '../guest/pageTables.js';
import { PAGE_SIZE } from '../guest/physmem.js';
import type { ThreadContext } from '../guest/threadContext.js';
import {
  SCRATCH_ADDR,
  SCRATCH_SIZE,
  SNIPPET_CODE_ADDR,
  SNIPPET_CODE_SIZE,
  STACK_ADDR,
  STACK_SIZE,
} from './layout.js';

/** Registers and the two data areas: what a snippet starts from and what it ends with. */
export interface SnippetState {
  context: ThreadContext;
  /** SCRATCH_SIZE bytes at SCRATCH_ADDR. */
  scratch: Uint8Array;
  /** STACK_SIZE bytes at STACK_ADDR. */
  stack: Uint8Array;
}

export interface SnippetInput extends SnippetState {
  /** Machine code placed at SNIPPET_CODE_ADDR; it must end in the terminator `ud2`. */
  code: Uint8Array;
}

/** How a snippet run ended: always an exception (the terminator is a #UD). */
export interface SnippetEnd {
  vector: number;
  errorCode: number;
  /** rip of the instruction that raised it. */
  rip: bigint;
  /** CR2 for a page fault, else 0. */
  faultAddress: bigint;
}

export interface SnippetResult {
  end: SnippetEnd;
  final: SnippetState;
}

export const UD2 = Uint8Array.of(0x0f, 0x0b);

/** Physical offsets of each page of an area (pages need not be contiguous). */
function physPages(aspace: AddressSpace, vaddr: number, size: number): number[] {
  const out: number[] = [];
  for (let off = 0; off < size; off += PAGE_SIZE) out.push(aspace.translate(vaddr + off, 'read'));
  return out;
}

export class SnippetMemory {
  private readonly codePages: number[];
  private readonly scratchPages: number[];
  private readonly stackPages: number[];

  /** Maps the three areas in `aspace` (fresh, zeroed pages). */
  constructor(readonly aspace: AddressSpace) {
    aspace.mapFixed(SNIPPET_CODE_ADDR, SNIPPET_CODE_SIZE, PROT_READ | PROT_EXEC, 'mmap', '[snippet-code]');
    aspace.mapFixed(SCRATCH_ADDR, SCRATCH_SIZE, PROT_READ | PROT_WRITE, 'mmap', '[snippet-scratch]');
    aspace.mapFixed(STACK_ADDR, STACK_SIZE, PROT_READ | PROT_WRITE, 'mmap', '[snippet-stack]');
    this.codePages = physPages(aspace, SNIPPET_CODE_ADDR, SNIPPET_CODE_SIZE);
    this.scratchPages = physPages(aspace, SCRATCH_ADDR, SCRATCH_SIZE);
    this.stackPages = physPages(aspace, STACK_ADDR, STACK_SIZE);
  }

  private put(pages: number[], data: Uint8Array, areaSize: number, what: string): void {
    if (data.length > areaSize) throw new RangeError(`${what}: ${data.length} bytes do not fit in ${areaSize}`);
    const bytes = this.aspace.phys.bytes;
    for (let i = 0; i < pages.length; i++) {
      const p = pages[i]!;
      const chunk = data.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE);
      bytes.set(chunk, p);
      // Fill the rest of the page (previous snippets' leftovers must not leak into this one).
      if (chunk.length < PAGE_SIZE) bytes.fill(0xcc, p + chunk.length, p + PAGE_SIZE);
    }
  }

  private get(pages: number[]): Uint8Array {
    const out = new Uint8Array(pages.length * PAGE_SIZE);
    const bytes = this.aspace.phys.bytes;
    pages.forEach((p, i) => out.set(bytes.subarray(p, p + PAGE_SIZE), i * PAGE_SIZE));
    return out;
  }

  /** Writes code, scratch and stack. Code is padded with int3 (0xCC): falling off the end is a #BP. */
  load(input: SnippetInput): void {
    if (input.scratch.length !== SCRATCH_SIZE) throw new RangeError(`scratch must be ${SCRATCH_SIZE} bytes`);
    if (input.stack.length !== STACK_SIZE) throw new RangeError(`stack must be ${STACK_SIZE} bytes`);
    this.put(this.codePages, input.code, SNIPPET_CODE_SIZE, 'code');
    this.put(this.scratchPages, input.scratch, SCRATCH_SIZE, 'scratch');
    this.put(this.stackPages, input.stack, STACK_SIZE, 'stack');
  }

  readScratch(): Uint8Array {
    return this.get(this.scratchPages);
  }

  readStack(): Uint8Array {
    return this.get(this.stackPages);
  }

  /** Up to 15 bytes at a code address (for reports). */
  codeAt(vaddr: number, length = 15): Uint8Array {
    const off = vaddr - SNIPPET_CODE_ADDR;
    if (off < 0 || off >= SNIPPET_CODE_SIZE) return new Uint8Array(0);
    return this.get(this.codePages).subarray(off, Math.min(off + length, SNIPPET_CODE_SIZE));
  }
}
