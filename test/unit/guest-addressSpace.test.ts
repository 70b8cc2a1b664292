import { describe, expect, it } from 'vitest';
import { AddressSpace } from '../../src/guest/addressSpace.js';
import { GuestMemoryFault, OutOfGuestMemoryError, ProcessStateFormatError } from '../../src/guest/errors.js';
import {
  KERNEL_RESERVED_PHYS_END,
  M5OP_PHYS,
  M5OP_SIZE,
  M5OP_VADDR,
  MMAP_BASE,
  USER_TOP, SE_WINDOW_END, SE_WINDOW_START } from '../../src/guest/layout.js';
import { PROT_EXEC, PROT_READ, PROT_WRITE } from '../../src/guest/pageTables.js';
import { MiB, checkTablesAgree, newPhys, walk } from './guest-support.js';

const RW = PROT_READ | PROT_WRITE;
const RX = PROT_READ | PROT_EXEC;
const P = 4096;

function layout(as: AddressSpace): string[] {
  return as.vmas.map((v) => `${v.start.toString(16)}-${v.end.toString(16)} ${v.prot} ${v.kind}`);
}

describe('page tables in guest memory', () => {
  it('agree with the JS page map for every mapped page, through both PML4s', () => {
    const as = new AddressSpace(newPhys());
    as.mapFixed(0x400000, 3 * P, RX, 'elf', 'prog');
    as.mapFixed(0x403000, 2 * P, RW, 'elf', 'prog');
    as.mapFixed(0x7fffff000000, 0x200000 + 5 * P, RW, 'stack', '[stack]'); // crosses a 2 MiB boundary
    as.mapAnywhere(7 * P, PROT_READ, 'mmap', '');
    as.mapIo(M5OP_VADDR, M5OP_PHYS, M5OP_SIZE, RW, '[m5op]');
    expect(as.cr3).not.toBe(as.cr3Alternate);
    expect(checkTablesAgree(as)).toBeGreaterThan(500);
    // the io window maps to the MMIO address outside RAM
    expect(walk(as.phys, as.cr3, BigInt(M5OP_VADDR + 0x2100))!.phys).toBe(M5OP_PHYS + 0x2100);
  });

  it('still agree after munmap and mprotect in the middle of mappings', () => {
    const as = new AddressSpace(newPhys());
    const a = as.mapAnywhere(64 * P, RW, 'mmap', '');
    as.unmap(a + 10 * P, 5 * P);
    as.protect(a + 20 * P, 3 * P, PROT_READ);
    as.protect(a + 30 * P, 2 * P, RX);
    as.protect(a + 40 * P, 1 * P, 0);
    checkTablesAgree(as);
    expect(() => as.translate(a + 10 * P, 'read')).toThrow(GuestMemoryFault);
    expect(() => as.translate(a + 20 * P, 'write')).toThrow(/permission denied/);
    expect(() => as.translate(a + 40 * P, 'read')).toThrow(GuestMemoryFault);
    expect(as.translate(a + 31 * P + 5, 'exec') % P).toBe(5);
  });

  it('maps kernel pages supervisor-only, into both PML4s, without touching the JS map', () => {
    const as = new AddressSpace(newPhys());
    as.mapKernel(0xfffffe0000001000n, 0x1000, 3 * P, RW | PROT_EXEC);
    for (const cr3 of [as.cr3, as.cr3Alternate]) {
      const w = walk(as.phys, cr3, 0xfffffe0000002010n)!;
      expect(w.phys).toBe(0x2010);
      expect(w.user).toBe(false);
      expect(w.write).toBe(true);
    }
    as.mapKernel(0xfffffe0000008000n, 0x8000, P, RX, { user: true }); // the workaround knob
    expect(walk(as.phys, as.cr3, 0xfffffe0000008000n)!.user).toBe(true);
    expect(as.snapshot().pageTables.kernel.map((k) => k.user)).toEqual([false, true]);
    expect(() => as.mapKernel(0xfffffe0000010000n, KERNEL_RESERVED_PHYS_END, P, RW)).toThrow(/reserved kernel area/);
    expect(() => as.mapKernel(0x10000n, 0x1000, P, RW)).toThrow(/upper-half/);
    expect(as.mappedPages).toBe(0);
  });

  it('allocates no physical page below 1 MiB and never page 0', () => {
    const as = new AddressSpace(newPhys());
    const a = as.mapAnywhere(16 * P, RW, 'mmap', '');
    for (let i = 0; i < 16; i++) expect(as.translate(a + i * P, 'read')).toBeGreaterThanOrEqual(KERNEL_RESERVED_PHYS_END);
    expect(as.cr3).toBeGreaterThanOrEqual(KERNEL_RESERVED_PHYS_END);
  });

  it('counts TLB generations only when mappings are removed or downgraded', () => {
    const as = new AddressSpace(newPhys());
    const a = as.mapAnywhere(8 * P, PROT_READ, 'mmap', '');
    const g0 = as.tlbGeneration;
    as.protect(a, 8 * P, RW); // upgrade
    as.mapAnywhere(P, RW, 'mmap', '');
    expect(as.tlbGeneration).toBe(g0);
    as.protect(a, P, PROT_READ);
    expect(as.tlbGeneration).toBe(g0 + 1);
    as.unmap(a + 4 * P, P);
    expect(as.tlbGeneration).toBe(g0 + 2);
    as.unmap(0x100000000, P); // nothing there
    expect(as.tlbGeneration).toBe(g0 + 2);
  });
});

describe('VMAs', () => {
  it('splits for munmap and mprotect in the middle, and merges back', () => {
    const as = new AddressSpace(newPhys());
    const a = as.mapAnywhere(10 * P, RW, 'mmap', '');
    as.protect(a + 3 * P, 2 * P, PROT_READ);
    expect(layout(as)).toEqual([
      `${a.toString(16)}-${(a + 3 * P).toString(16)} 3 mmap`,
      `${(a + 3 * P).toString(16)}-${(a + 5 * P).toString(16)} 1 mmap`,
      `${(a + 5 * P).toString(16)}-${(a + 10 * P).toString(16)} 3 mmap`,
    ]);
    as.protect(a + 3 * P, 2 * P, RW);
    expect(as.vmas).toHaveLength(1);
    as.unmap(a + 4 * P, 2 * P);
    expect(layout(as)).toEqual([
      `${a.toString(16)}-${(a + 4 * P).toString(16)} 3 mmap`,
      `${(a + 6 * P).toString(16)}-${(a + 10 * P).toString(16)} 3 mmap`,
    ]);
    // mprotect over a hole fails and changes nothing
    expect(as.protect(a, 10 * P, PROT_READ)).toBe(false);
    expect(as.vmas.every((v) => v.prot === RW)).toBe(true);
  });

  it('munmap of a range covering parts of several VMAs and holes', () => {
    const as = new AddressSpace(newPhys());
    as.mapFixed(0x10000000, 4 * P, RW, 'mmap', '');
    as.mapFixed(0x10006000, 4 * P, RX, 'mmap', '');
    as.unmap(0x10002000, 6 * P);
    expect(layout(as)).toEqual(['10000000-10002000 3 mmap', '10008000-1000a000 5 mmap']);
    checkTablesAgree(as);
  });

  it('mmap places top-down below MMAP_BASE and reuses holes', () => {
    const as = new AddressSpace(newPhys());
    const a = as.mapAnywhere(3 * P, RW, 'mmap', '');
    const b = as.mapAnywhere(P, RW, 'mmap', '');
    expect(a).toBe(MMAP_BASE - 3 * P);
    expect(b).toBe(a - P);
    as.unmap(a, 3 * P);
    expect(as.mapAnywhere(2 * P, RW, 'mmap', '')).toBe(MMAP_BASE - 2 * P);
    expect(as.findFree(2 ** 47)).toBe(-1);
  });

  it('never hands out the SE window (syscall stub, doorbell, m5op pages)', () => {
    const as = new AddressSpace(newPhys());
    // only one free page between the window and the search top: the range must go below the window
    const got = as.findFree(2 * P, SE_WINDOW_END + P);
    expect(got + 2 * P).toBe(SE_WINDOW_START);
    expect(as.isFree(M5OP_VADDR, P)).toBe(false);
    expect(as.isFree(SE_WINDOW_START, P)).toBe(false);
    expect(as.touchesIo(SE_WINDOW_START, P)).toBe(true);
  });

  it('MAP_FIXED replaces existing pages with fresh zero pages', () => {
    const as = new AddressSpace(newPhys());
    const a = as.mapAnywhere(4 * P, RW, 'mmap', '');
    as.write(a + P, Uint8Array.of(1, 2, 3));
    as.mapFixed(a + P, P, PROT_READ, 'mmap', '');
    expect([...as.read(a + P, 3)]).toEqual([0, 0, 0]);
    expect(as.vmas.map((v) => v.prot)).toEqual([RW, PROT_READ, RW]);
  });

  it('brk grows and shrinks with Linux semantics', () => {
    const as = new AddressSpace(newPhys());
    as.mapFixed(0x400000, P, RX, 'elf', 'p');
    as.initBrk(0x401234);
    expect(as.currentBrk).toBe(0x402000);
    expect(as.brk(0)).toBe(0x402000); // query
    expect(as.brk(0x100)).toBe(0x402000); // below the start: refused
    expect(as.brk(0x402000 + 10)).toBe(0x40200a);
    as.write(0x402000, Uint8Array.of(7));
    expect(as.brk(0x405800)).toBe(0x405800);
    expect(as.vmas.filter((v) => v.kind === 'brk')).toEqual([{ start: 0x402000, end: 0x406000, prot: RW, kind: 'brk', name: '[heap]' }]);
    expect(as.readU8(0x402000)).toBe(7);
    expect(as.brk(0x403000)).toBe(0x403000);
    expect(() => as.readU8(0x404000)).toThrow(GuestMemoryFault);
    // growing into another mapping fails and returns the old break
    as.mapFixed(0x408000, P, RW, 'mmap', '');
    expect(as.brk(0x409000)).toBe(0x403000);
    expect(as.brk(0x402000)).toBe(0x402000);
    expect(as.vmas.some((v) => v.kind === 'brk')).toBe(false);
  });

  it('mremap grows in place, or moves the physical pages', () => {
    const as = new AddressSpace(newPhys());
    const a = as.mapFixed(0x20000000, 2 * P, RW, 'mmap', '');
    as.mapFixed(0x20002000, P, PROT_READ, 'mmap', ''); // no room above: it must move
    as.write(a, Uint8Array.of(9, 8, 7));
    expect(as.remap(a, 2 * P, 4 * P, { mayMove: false })).toBe('ENOMEM');
    const pa = as.translate(a, 'read');
    const b = as.remap(a, 2 * P, 4 * P, { mayMove: true }) as number;
    expect(b).not.toBe(a);
    expect(as.translate(b, 'read')).toBe(pa);
    expect([...as.read(b, 3)]).toEqual([9, 8, 7]);
    expect(() => as.read(a, 1)).toThrow(GuestMemoryFault);
    // shrink in place
    expect(as.remap(b, 4 * P, P, { mayMove: false })).toBe(b);
    // grow in place where there is room
    const c = as.mapFixed(0x30000000, P, RW, 'mmap', '');
    expect(as.remap(c, P, 3 * P, { mayMove: false })).toBe(c);
    expect(as.remap(0x40000000, P, 2 * P, { mayMove: true })).toBe('EFAULT');
    checkTablesAgree(as);
  });
});

describe('physical allocator', () => {
  it('reuses freed pages and zeroes them', () => {
    const as = new AddressSpace(newPhys());
    const a = as.mapAnywhere(4 * P, RW, 'mmap', '');
    const phys = [0, 1, 2, 3].map((i) => as.translate(a + i * P, 'read'));
    as.write(a, new Uint8Array(4 * P).fill(0xab));
    as.unmap(a, 4 * P);
    const b = as.mapAnywhere(4 * P, RW, 'mmap', '');
    expect([0, 1, 2, 3].map((i) => as.translate(b + i * P, 'read'))).toEqual(phys);
    expect(as.read(b, 4 * P).every((x) => x === 0)).toBe(true);
  });

  it('throws OutOfGuestMemoryError without mapping anything when memory runs out', () => {
    const as = new AddressSpace(newPhys(16 * MiB));
    const before = layout(as);
    expect(() => as.mapAnywhere(20 * MiB, RW, 'mmap', '')).toThrow(OutOfGuestMemoryError);
    expect(layout(as)).toEqual(before);
    const avail = as.availablePages;
    expect(avail).toBeGreaterThan(3000);
    as.mapAnywhere((avail - 16) * P, RW, 'mmap', '');
    expect(() => as.mapAnywhere(64 * P, RW, 'mmap', '')).toThrow(/raise --mem-size/);
  });
});

describe('user memory access', () => {
  it('reads and writes across page boundaries and checks permissions', () => {
    const as = new AddressSpace(newPhys());
    const a = as.mapAnywhere(3 * P, RW, 'mmap', '');
    as.protect(a + 2 * P, P, PROT_READ);
    as.writeU64(a + P - 4, 0x1122334455667788n);
    expect(as.readU64(a + P - 4)).toBe(0x1122334455667788n);
    expect(as.readU32(a + P - 2)).toBe(0x33445566);
    expect(as.readU16(a + P - 1)).toBe(0x4455);
    as.writeU32(a + 8, 0xdeadbeef);
    expect(as.readU32(a + 8)).toBe(0xdeadbeef);
    expect(() => as.writeU32(a + 2 * P, 1)).toThrow(/permission denied/);
    expect(() => as.write(a + 2 * P - 2, Uint8Array.of(1, 2, 3, 4))).toThrow(GuestMemoryFault);
    expect(as.readU8(a + 2 * P - 2)).toBe(0); // nothing written on a fault
    as.writeUnchecked(a + 2 * P, Uint8Array.of(5)); // the loader may
    expect(as.readU8(a + 2 * P)).toBe(5);
    expect(() => as.read(USER_TOP - 8, 16)).toThrow(GuestMemoryFault);
  });

  it('reads C strings across pages and stops at maxLen', () => {
    const as = new AddressSpace(newPhys());
    const a = as.mapAnywhere(2 * P, RW, 'mmap', '');
    as.write(a + P - 3, Buffer.from('héllo\0', 'utf8'));
    expect(as.readCString(a + P - 3, 100)).toBe('héllo');
    expect(as.readCString(a + P - 3, 3)).toBeNull();
  });

  it('gives zero-copy views of physically contiguous runs', () => {
    const as = new AddressSpace(newPhys());
    const a = as.mapAnywhere(3 * P, RW, 'mmap', '');
    const view = as.userView(a + 100, 2 * P, 'read');
    expect(view).not.toBeNull();
    as.write(a + 100, Uint8Array.of(42));
    expect(view![0]).toBe(42);
    expect(() => as.userView(a + 2 * P, 2 * P, 'read')).toThrow(GuestMemoryFault);
  });

  it('refuses user access to the MMIO window', () => {
    const as = new AddressSpace(newPhys());
    as.mapIo(M5OP_VADDR, M5OP_PHYS, M5OP_SIZE, RW, '[m5op]');
    expect(as.translate(M5OP_VADDR + 0x4100, 'read')).toBe(M5OP_PHYS + 0x4100);
    expect(() => as.read(M5OP_VADDR, 8)).toThrow(GuestMemoryFault);
  });
});

describe('address space snapshots', () => {
  it('restore gives identical translations, VMAs, brk and allocator', () => {
    const phys = newPhys();
    const as = new AddressSpace(phys);
    as.mapKernel(0xfffffe0000001000n, 0x1000, 2 * P, RW);
    as.mapFixed(0x400000, 2 * P, RX, 'elf', 'prog');
    as.initBrk(0x402000);
    as.brk(0x404100);
    const m = as.mapAnywhere(8 * P, RW, 'mmap', '');
    as.unmap(m + 2 * P, 2 * P);
    as.protect(m, P, 0);
    as.mapIo(M5OP_VADDR, M5OP_PHYS, M5OP_SIZE, RW, '[m5op]');
    as.write(0x402010, Uint8Array.of(1, 2, 3));
    const state = as.snapshot();

    // restore into a copy of memory whose page-table pages were wiped: they are rewritten
    const phys2 = newPhys();
    phys2.bytes.set(phys.bytes);
    const wiped = [as.cr3, as.cr3Alternate];
    for (const t of wiped) phys2.bytes.fill(0xff, t, t + P);
    const back = AddressSpace.restore(phys2, structuredClone(state));
    expect(back.cr3).toBe(as.cr3);
    expect(back.snapshot()).toEqual(state);
    for (let va = 0x400000; va < MMAP_BASE; va += va < 0x500000 ? P : 0x7fff0000000) {
      for (const acc of ['read', 'write', 'exec'] as const) {
        let x: unknown;
        let y: unknown;
        try { x = as.translate(va, acc); } catch (e) { x = (e as GuestMemoryFault).reason; }
        try { y = back.translate(va, acc); } catch (e) { y = (e as GuestMemoryFault).reason; }
        expect(y).toEqual(x);
      }
    }
    for (const v of as.vmas) {
      for (let va = v.start; va < v.end; va += P) {
        for (const acc of ['read', 'write', 'exec'] as const) {
          let x: unknown;
          let y: unknown;
          try { x = as.translate(va, acc); } catch (e) { x = (e as GuestMemoryFault).reason; }
          try { y = back.translate(va, acc); } catch (e) { y = (e as GuestMemoryFault).reason; }
          expect(y).toEqual(x);
        }
      }
    }
    checkTablesAgree(back);
    expect(walk(phys2, back.cr3, 0xfffffe0000001000n)!.phys).toBe(0x1000);
    expect([...back.read(0x402010, 3)]).toEqual([1, 2, 3]);
    expect(back.currentBrk).toBe(0x404100);
    // both continue identically
    expect(back.mapAnywhere(P, RW, 'mmap', '')).toBe(as.mapAnywhere(P, RW, 'mmap', ''));
    expect(back.translate(back.vmas[back.vmas.length - 2]!.start, 'read')).toBeGreaterThan(0);
  });

  it('restore of a damaged state names the field', () => {
    const phys = newPhys();
    const as = new AddressSpace(phys);
    as.mapAnywhere(P, RW, 'mmap', '');
    const good = as.snapshot();
    const bad1 = structuredClone(good);
    bad1.vmas[0]!.end = bad1.vmas[0]!.start - P;
    expect(() => AddressSpace.restore(phys, bad1)).toThrow(ProcessStateFormatError);
    expect(() => AddressSpace.restore(phys, bad1)).toThrow(/addressSpace\.vmas\[0\]\.end/);
    const bad2 = structuredClone(good) as unknown as Record<string, unknown>;
    bad2.nextPage = 'x';
    expect(() => AddressSpace.restore(phys, bad2 as never)).toThrow(/addressSpace\.nextPage/);
    expect(() => AddressSpace.restore(newPhys(16 * MiB), good)).toThrow(/addressSpace\.memSize/);
  });
});
