/**
 * The guest's user address space: a physical page allocator, the page tables, the VMA list,
 * brk, and the checked user-memory accessors the syscall layer uses.
 *
 * Memory is populated eagerly: every page of a VMA gets a physical page when the VMA is
 * created, because KVM cannot demand-page for us. The host mapping behind guest memory is
 * sparse, so pages the guest never touches cost no host RAM. Freed pages are zeroed when
 * freed, so free and never-used pages are all zero (a checkpoint stores non-zero pages only).
 */
import {
  GuestAddressSpaceError,
  GuestInternalError,
  GuestMemoryFault,
  OutOfGuestMemoryError,
} from './errors.js';
import {
  KERNEL_RESERVED_PHYS_END,
  MMAP_BASE,
  MMAP_MIN_ADDR,
  USER_TOP,
  isPageAligned,
  pageUp,
  SE_WINDOW_END,
  SE_WINDOW_START,
} from './layout.js';
import {
  type Access,
  type PageTablesState,
  PageTables,
  PM_FLAG_MASK,
  PM_IO,
  PM_MAPPED,
  PROT_MASK,
} from './pageTables.js';
import type { PhysicalMemory } from './physmem.js';
import { PAGE_SIZE } from './physmem.js';
import {
  asArray,
  asBool,
  asInt,
  asObject,
  asOneOf,
  asString,
  fail,
} from './processState.js';

export type VmaKind = 'elf' | 'brk' | 'stack' | 'mmap' | 'file' | 'io';
export const VMA_KINDS: readonly VmaKind[] = ['elf', 'brk', 'stack', 'mmap', 'file', 'io'];

/** A virtual memory area: [start, end), page aligned, one protection. */
export interface Vma {
  start: number;
  end: number;
  prot: number;
  kind: VmaKind;
  name: string;
}

export const ADDRESS_SPACE_STATE_VERSION = 1;

export interface AddressSpaceState {
  version: typeof ADDRESS_SPACE_STATE_VERSION;
  memSize: number;
  /** Bump pointer of the physical allocator (physical address of the next never-used page). */
  nextPage: number;
  /** Freed (zeroed) physical pages, reused last-in first-out. */
  freePages: number[];
  pageTables: PageTablesState;
  vmas: Vma[];
  brkStart: number;
  brk: number;
  tlbGeneration: number;
  /**
   * Incremented by every change to mappings, VMAs, brk or the physical allocator; carried by
   * handoffs, so equal values mean equal address spaces (only the model holding the guest
   * changes it). Absent in old snapshots (read as 0).
   */
  mapGeneration: number;
}

/** Kinds of adjacent VMAs that merge when their protection matches (like Linux anon VMAs). */
const MERGEABLE: ReadonlySet<VmaKind> = new Set(['mmap', 'brk', 'stack']);
/** Ranges mmap never hands out. */
const RESERVED: readonly (readonly [number, number])[] = [[SE_WINDOW_START, SE_WINDOW_END]];

export class AddressSpace {
  pageTables: PageTables;
  /** Incremented whenever a mapping is removed or its permissions reduced (TLB flush needed). */
  tlbGeneration = 0;
  /** See AddressSpaceState.mapGeneration. */
  mapGeneration = 0;
  private readonly memSize: number;
  private nextPage = KERNEL_RESERVED_PHYS_END;
  private freePages: number[] = [];
  private vmaList: Vma[] = [];
  private brkStartAddr = 0;
  private brkCurrent = 0;

  constructor(readonly phys: PhysicalMemory, state?: AddressSpaceState, memoryCurrent = false) {
    this.memSize = phys.size;
    if (state) {
      this.pageTables = this.takeState(state, memoryCurrent);
    } else {
      this.pageTables = new PageTables(phys, () => this.allocPage());
    }
  }

  /**
   * Replaces this address space's contents with a snapshot, in place: the objects that hold it
   * (a CPU model's memory view) stay valid. Used when a model takes over from another.
   */
  adopt(s: AddressSpaceState): void {
    // Nothing changed since this side last had the guest (see mapGeneration).
    if (s.mapGeneration === this.mapGeneration) return;
    // Guest memory is shared with the model that produced `state`: its page tables are current.
    this.pageTables = this.takeState(s, true);
  }

  /** Everything but the page tables from `s`; returns the page tables built from it. */
  private takeState(s: AddressSpaceState, memoryCurrent: boolean): PageTables {
    this.mapGeneration = s.mapGeneration;
    this.cachedSnapshot = null;
    this.nextPage = s.nextPage;
    this.freePages = [...s.freePages];
    this.vmaList = s.vmas.map((v) => ({ ...v }));
    this.brkStartAddr = s.brkStart;
    this.brkCurrent = s.brk;
    this.tlbGeneration = s.tlbGeneration;
    return new PageTables(this.phys, () => this.allocPage(), s.pageTables, memoryCurrent);
  }

  /** Rebuilds an address space (and rewrites its page tables) from a validated or raw snapshot. */
  static restore(phys: PhysicalMemory, state: AddressSpaceState, field = 'addressSpace'): AddressSpace {
    return new AddressSpace(phys, validateAddressSpaceState(state, phys.size, field));
  }

  private cachedSnapshot: AddressSpaceState | null = null;

  /** The state as plain data. Treat it as read-only: it is cached until the next change. */
  snapshot(): AddressSpaceState {
    const c = this.cachedSnapshot;
    if (c !== null && c.mapGeneration === this.mapGeneration) return c;
    return (this.cachedSnapshot = this.buildSnapshot());
  }

  private buildSnapshot(): AddressSpaceState {
    return {
      version: ADDRESS_SPACE_STATE_VERSION,
      memSize: this.memSize,
      nextPage: this.nextPage,
      freePages: [...this.freePages],
      pageTables: this.pageTables.snapshot(),
      vmas: this.vmaList.map((v) => ({ ...v })),
      brkStart: this.brkStartAddr,
      brk: this.brkCurrent,
      tlbGeneration: this.tlbGeneration,
      mapGeneration: this.mapGeneration,
    };
  }

  get cr3(): number {
    return this.pageTables.cr3;
  }

  get cr3Alternate(): number {
    return this.pageTables.cr3Alternate;
  }

  /** The VMAs in address order (do not modify). */
  get vmas(): readonly Readonly<Vma>[] {
    return this.vmaList;
  }

  get brkStart(): number {
    return this.brkStartAddr;
  }

  get currentBrk(): number {
    return this.brkCurrent;
  }

  /** Bytes of physical memory ever allocated: every page in use lies below. */
  get highWater(): number {
    return this.nextPage;
  }

  /** Physical pages still available (free list + never used). */
  get availablePages(): number {
    return this.freePages.length + Math.floor((this.memSize - this.nextPage) / PAGE_SIZE);
  }

  /** User pages with a mapping. */
  get mappedPages(): number {
    return this.pageTables.mappedPages;
  }

  translate(vaddr: number, access: Access): number {
    return this.pageTables.translate(vaddr, access);
  }

  // ---- physical allocator ----

  /** One physical page, zero-filled. */
  allocPage(): number {
    this.mapGeneration++;
    const reused = this.freePages.pop();
    if (reused !== undefined) return reused;
    if (this.nextPage + PAGE_SIZE > this.memSize) throw new OutOfGuestMemoryError(PAGE_SIZE, this.memSize);
    const p = this.nextPage;
    this.nextPage += PAGE_SIZE;
    return p;
  }

  private freePage(paddr: number): void {
    this.mapGeneration++;
    this.phys.bytes.fill(0, paddr, paddr + PAGE_SIZE);
    this.freePages.push(paddr);
  }

  /** Throws OutOfGuestMemoryError unless `pages` data pages (plus their page tables) can be allocated. */
  private ensureAvailable(pages: number, reclaimable = 0): void {
    const tables = Math.ceil(pages / 512) + Math.ceil(pages / 512 ** 2) + 6;
    const need = pages + tables;
    const have = this.availablePages + reclaimable;
    if (need > have) throw new OutOfGuestMemoryError((need - have) * PAGE_SIZE, this.memSize);
  }

  // ---- queries ----

  /** The VMA containing `addr`, if any. */
  findVma(addr: number): Vma | undefined {
    const v = this.vmaList[this.firstEndingAfter(addr)];
    return v !== undefined && v.start <= addr ? v : undefined;
  }

  /** True when no VMA and no reserved window intersects [start, start+length). */
  isFree(start: number, length: number): boolean {
    const end = start + length;
    if (start < 0 || end > USER_TOP) return false;
    for (const [rs, re] of RESERVED) if (start < re && rs < end) return false;
    const v = this.vmaList[this.firstEndingAfter(start)];
    return v === undefined || v.start >= end;
  }

  /** True when VMAs cover every byte of [start, start+length). */
  isMapped(start: number, length: number): boolean {
    const end = start + length;
    let at = start;
    for (let i = this.firstEndingAfter(start); i < this.vmaList.length && at < end; i++) {
      const v = this.vmaList[i]!;
      if (v.start > at) return false;
      at = v.end;
    }
    return at >= end;
  }

  /** True when [start, start+length) intersects an 'io' VMA or a reserved window. */
  touchesIo(start: number, length: number): boolean {
    const end = start + length;
    for (const [rs, re] of RESERVED) if (start < re && rs < end) return true;
    for (let i = this.firstEndingAfter(start); i < this.vmaList.length; i++) {
      const v = this.vmaList[i]!;
      if (v.start >= end) break;
      if (v.kind === 'io') return true;
    }
    return false;
  }

  /** Highest free page-aligned range of `length` bytes below `top` (top-down like Linux), or -1. */
  findFree(length: number, top = MMAP_BASE): number {
    length = pageUp(length);
    const obstacles: [number, number][] = this.vmaList.map((v) => [v.start, v.end]);
    for (const r of RESERVED) obstacles.push([r[0], r[1]]);
    obstacles.sort((a, b) => a[0] - b[0]);
    let limit = top;
    for (let i = obstacles.length - 1; i >= 0; i--) {
      const [s, e] = obstacles[i]!;
      if (s >= limit) continue;
      if (e <= limit && limit - e >= length) return limit - length;
      limit = Math.min(limit, s);
    }
    return limit - MMAP_MIN_ADDR >= length ? limit - length : -1;
  }

  // ---- mapping ----

  /** Maps fresh zeroed pages at [start, start+length), replacing whatever was there (MAP_FIXED). */
  mapFixed(start: number, length: number, prot: number, kind: VmaKind, name: string): number {
    this.mapGeneration++;
    const end = this.checkUserRange(start, length, 'mapFixed');
    const pages = (end - start) / PAGE_SIZE;
    this.ensureAvailable(pages, this.countRamPages(start, end));
    this.unmap(start, end - start);
    this.populate(start, end, prot, kind, name);
    return start;
  }

  /** Maps fresh zeroed pages wherever mmap would (top-down below MMAP_BASE). */
  mapAnywhere(length: number, prot: number, kind: VmaKind, name: string): number {
    this.mapGeneration++;
    const start = this.findFree(length);
    if (start < 0) throw new GuestAddressSpaceError(pageUp(length));
    const end = this.checkUserRange(start, length, 'mapAnywhere');
    this.ensureAvailable((end - start) / PAGE_SIZE);
    this.populate(start, end, prot, kind, name);
    return start;
  }

  /** Maps user-accessible pages onto physical addresses outside RAM (MMIO, e.g. the m5op window). */
  mapIo(vaddr: number, physAddr: number, length: number, prot: number, name = '[io]'): void {
    this.mapGeneration++;
    const end = this.checkUserRange(vaddr, length, 'mapIo');
    const kernelPage = physAddr + length <= KERNEL_RESERVED_PHYS_END && physAddr > 0;
    if (!isPageAligned(physAddr) || (physAddr < this.memSize && !kernelPage)) {
      throw new GuestInternalError(
        `mapIo: physical address 0x${physAddr.toString(16)} is neither outside guest RAM nor an SE-kernel page`,
      );
    }
    if (this.vmaList.some((v) => v.start < end && vaddr < v.end)) {
      throw new GuestInternalError(`mapIo: 0x${vaddr.toString(16)}+${length} overlaps an existing mapping`);
    }
    this.ensureAvailable(0);
    for (let va = vaddr, pa = physAddr; va < end; va += PAGE_SIZE, pa += PAGE_SIZE) {
      this.pageTables.mapUserPage(va, pa, prot, true);
    }
    this.insertVma({ start: vaddr, end, prot: prot & PROT_MASK, kind: 'io', name });
  }

  /**
   * Supervisor-only mapping of physical pages the SE kernel reserved below
   * KERNEL_RESERVED_PHYS_END, at an upper-half address. Not in the JS page map. `opts.user`
   * sets US=1 on the leaves (only for hosts that enter the syscall stub at CPL3).
   */
  mapKernel(vaddr: bigint, physAddr: number, length: number, prot: number, opts: { user?: boolean } = {}): void {
    this.mapGeneration++;
    if (vaddr < 0xffff800000000000n || vaddr > 0xffffffffffffffffn || vaddr % BigInt(PAGE_SIZE) !== 0n) {
      throw new GuestInternalError(`mapKernel: 0x${vaddr.toString(16)} is not a page-aligned upper-half address`);
    }
    const pages = Math.ceil(length / PAGE_SIZE);
    if (!isPageAligned(physAddr) || physAddr + pages * PAGE_SIZE > KERNEL_RESERVED_PHYS_END || pages <= 0) {
      throw new GuestInternalError(
        `mapKernel: physical 0x${physAddr.toString(16)}+${length} is not inside the reserved kernel area (< 0x${KERNEL_RESERVED_PHYS_END.toString(16)})`,
      );
    }
    if (vaddr + BigInt(pages * PAGE_SIZE) - 1n > 0xffffffffffffffffn) {
      throw new GuestInternalError('mapKernel: range wraps past the top of the address space');
    }
    this.ensureAvailable(pages);
    this.pageTables.mapKernel(vaddr, physAddr, pages, prot, opts.user ?? false);
  }

  /** Removes every mapping in [start, start+length) (holes are fine), freeing RAM pages. */
  unmap(start: number, length: number): void {
    this.mapGeneration++;
    const end = this.checkUserRange(start, length, 'unmap');
    this.splitAt(start);
    this.splitAt(end);
    const i = this.firstEndingAfter(start);
    let j = i;
    while (j < this.vmaList.length && this.vmaList[j]!.start < end) {
      this.releasePages(this.vmaList[j]!);
      j++;
    }
    if (j > i) {
      this.vmaList.splice(i, j - i);
      this.tlbGeneration++;
    }
  }

  /** Changes the protection of [start, start+length); false (and nothing changed) if part is unmapped. */
  protect(start: number, length: number, prot: number): boolean {
    this.mapGeneration++;
    const end = this.checkUserRange(start, length, 'protect');
    prot &= PROT_MASK;
    if (!this.isMapped(start, end - start)) return false;
    this.splitAt(start);
    this.splitAt(end);
    let reduced = false;
    for (let i = this.firstEndingAfter(start); i < this.vmaList.length; i++) {
      const v = this.vmaList[i]!;
      if (v.start >= end) break;
      if (v.prot & ~prot) reduced = true;
      v.prot = prot;
      for (let va = v.start; va < v.end; va += PAGE_SIZE) this.pageTables.protectUserPage(va, prot);
    }
    this.mergeAll();
    if (reduced) this.tlbGeneration++;
    return true;
  }

  /** Zeroes the anonymous pages of [start, start+length) (MADV_DONTNEED); file and ELF pages keep their data. */
  discard(start: number, length: number): void {
    this.mapGeneration++;
    const end = this.checkUserRange(start, length, 'discard');
    for (let i = this.firstEndingAfter(start); i < this.vmaList.length; i++) {
      const v = this.vmaList[i]!;
      if (v.start >= end) break;
      if (!MERGEABLE.has(v.kind)) continue;
      for (let va = Math.max(v.start, start); va < Math.min(v.end, end); va += PAGE_SIZE) {
        const e = this.pageTables.entry(va);
        if (e & PM_MAPPED && !(e & PM_IO)) {
          const pa = e - (e & PM_FLAG_MASK);
          this.phys.bytes.fill(0, pa, pa + PAGE_SIZE);
        }
      }
    }
  }

  /**
   * mremap: resize [oldStart, oldStart+oldLength) (which must lie in one VMA), in place or by
   * moving its physical pages (no copy). Returns the new address or the Linux errno name.
   */
  remap(
    oldStart: number,
    oldLength: number,
    newLength: number,
    opts: { mayMove: boolean; fixed?: number },
  ): number | 'EFAULT' | 'ENOMEM' | 'EINVAL' {
    let oldLen = pageUp(oldLength);
    const newLen = pageUp(newLength);
    const oldEnd = oldStart + oldLen;
    const v = this.findVma(oldStart);
    if (v === undefined || oldEnd > v.end || v.kind === 'io') return 'EFAULT';
    const { prot, kind, name } = v;
    if (opts.fixed !== undefined) {
      const dest = opts.fixed;
      if (dest < oldEnd && oldStart < dest + newLen) return 'EINVAL';
      if (dest + newLen > USER_TOP || this.touchesIo(dest, newLen)) return 'EINVAL';
      if (newLen < oldLen) {
        this.unmap(oldStart + newLen, oldLen - newLen);
        oldLen = newLen;
      }
      try {
        this.ensureAvailable((newLen - oldLen) / PAGE_SIZE, this.countRamPages(dest, dest + newLen));
      } catch (e) {
        if (e instanceof OutOfGuestMemoryError) return 'ENOMEM';
        throw e;
      }
      this.unmap(dest, newLen);
      this.move(oldStart, oldLen, dest, newLen, prot, kind, name);
      return dest;
    }
    if (newLen <= oldLen) {
      if (newLen < oldLen) this.unmap(oldStart + newLen, oldLen - newLen);
      return oldStart;
    }
    const growBy = newLen - oldLen;
    if (!this.hasPages(growBy / PAGE_SIZE)) return 'ENOMEM';
    if (oldEnd === v.end && this.isFree(oldEnd, growBy)) {
      this.populate(oldEnd, oldEnd + growBy, prot, kind, name);
      return oldStart;
    }
    if (!opts.mayMove) return 'ENOMEM';
    const dest = this.findFree(newLen);
    if (dest < 0) return 'ENOMEM';
    this.move(oldStart, oldLen, dest, newLen, prot, kind, name);
    return dest;
  }

  // ---- brk ----

  initBrk(start: number): void {
    this.mapGeneration++;
    this.brkStartAddr = pageUp(start);
    this.brkCurrent = this.brkStartAddr;
  }

  /** Linux brk(2): sets the break and returns it; returns the current break when the request fails. */
  brk(newBrk: number): number {
    this.mapGeneration++;
    if (!Number.isSafeInteger(newBrk) || newBrk < this.brkStartAddr || newBrk > USER_TOP) return this.brkCurrent;
    const oldEnd = pageUp(this.brkCurrent);
    const newEnd = pageUp(newBrk);
    if (newEnd > oldEnd) {
      if (!this.isFree(oldEnd, newEnd - oldEnd)) return this.brkCurrent;
      if (!this.hasPages((newEnd - oldEnd) / PAGE_SIZE)) return this.brkCurrent;
      this.populate(oldEnd, newEnd, PROT_READ_WRITE, 'brk', '[heap]');
    } else if (newEnd < oldEnd) {
      this.unmap(newEnd, oldEnd - newEnd);
    }
    this.brkCurrent = newBrk;
    return newBrk;
  }

  // ---- user memory access (checks user permissions; throws GuestMemoryFault) ----

  /** Physical address of a user byte; faults also for MMIO pages. */
  userPhys(vaddr: number, access: Access): number {
    const pa = this.pageTables.translate(vaddr, access);
    if (pa >= this.memSize) throw new GuestMemoryFault(BigInt(vaddr), access, 'protection');
    return pa;
  }

  /**
   * A view of physical memory for [vaddr, vaddr+length) when those pages are physically
   * contiguous (no copy), else null. Faults if any page is not accessible.
   */
  userView(vaddr: number, length: number, access: Access): Uint8Array | null {
    if (length <= 0) return this.phys.bytes.subarray(0, 0);
    const pa = this.userPhys(vaddr, access);
    let contiguous = true;
    const end = vaddr + length;
    for (let va = pageUp(vaddr + 1); va < end; va += PAGE_SIZE) {
      if (this.userPhys(va, access) !== pa + (va - vaddr)) contiguous = false;
    }
    return contiguous ? this.phys.bytes.subarray(pa, pa + length) : null;
  }

  /** Copies `length` user bytes out of the guest. */
  read(vaddr: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.readInto(vaddr, out);
    return out;
  }

  readInto(vaddr: number, out: Uint8Array): void {
    const bytes = this.phys.bytes;
    let done = 0;
    while (done < out.length) {
      const va = vaddr + done;
      const pa = this.userPhys(va, 'read');
      const n = Math.min(out.length - done, PAGE_SIZE - (va % PAGE_SIZE));
      out.set(bytes.subarray(pa, pa + n), done);
      done += n;
    }
  }

  write(vaddr: number, data: Uint8Array): void {
    this.checkAccess(vaddr, data.length, 'write');
    this.copyIn(vaddr, data, 'write');
  }

  /** Writes ignoring protection (the loader filling read-only segments); the pages must be mapped RAM. */
  writeUnchecked(vaddr: number, data: Uint8Array): void {
    const bytes = this.phys.bytes;
    let done = 0;
    while (done < data.length) {
      const va = vaddr + done;
      const e = this.pageTables.entry(va);
      const base = e - (e & PM_FLAG_MASK);
      if (!(e & PM_MAPPED) || e & PM_IO || base >= this.memSize) {
        throw new GuestMemoryFault(BigInt(va), 'write', 'unmapped');
      }
      const n = Math.min(data.length - done, PAGE_SIZE - (va % PAGE_SIZE));
      bytes.set(data.subarray(done, done + n), base + (va % PAGE_SIZE));
      done += n;
    }
  }

  /** Fills user memory with zeros (checked for write). */
  zero(vaddr: number, length: number): void {
    this.checkAccess(vaddr, length, 'write');
    let done = 0;
    while (done < length) {
      const va = vaddr + done;
      const pa = this.userPhys(va, 'write');
      const n = Math.min(length - done, PAGE_SIZE - (va % PAGE_SIZE));
      this.phys.bytes.fill(0, pa, pa + n);
      done += n;
    }
  }

  /** Faults unless every byte of [vaddr, vaddr+length) allows `access`. */
  checkAccess(vaddr: number, length: number, access: Access): void {
    if (length <= 0) return;
    const end = vaddr + length;
    for (let va = vaddr; va < end; va = pageUp(va + 1)) this.userPhys(va, access);
  }

  readU8(vaddr: number): number {
    return this.phys.bytes[this.userPhys(vaddr, 'read')]!;
  }

  readU16(vaddr: number): number {
    if (vaddr % PAGE_SIZE <= PAGE_SIZE - 2) return this.phys.view.getUint16(this.userPhys(vaddr, 'read'), true);
    return new DataView(this.read(vaddr, 2).buffer).getUint16(0, true);
  }

  readU32(vaddr: number): number {
    if (vaddr % PAGE_SIZE <= PAGE_SIZE - 4) return this.phys.view.getUint32(this.userPhys(vaddr, 'read'), true);
    return new DataView(this.read(vaddr, 4).buffer).getUint32(0, true);
  }

  readU64(vaddr: number): bigint {
    if (vaddr % PAGE_SIZE <= PAGE_SIZE - 8) return this.phys.view.getBigUint64(this.userPhys(vaddr, 'read'), true);
    return new DataView(this.read(vaddr, 8).buffer).getBigUint64(0, true);
  }

  writeU32(vaddr: number, value: number): void {
    if (vaddr % PAGE_SIZE <= PAGE_SIZE - 4) {
      this.phys.view.setUint32(this.userPhys(vaddr, 'write'), value >>> 0, true);
      return;
    }
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, value >>> 0, true);
    this.write(vaddr, b);
  }

  writeU64(vaddr: number, value: bigint): void {
    if (vaddr % PAGE_SIZE <= PAGE_SIZE - 8) {
      this.phys.view.setBigUint64(this.userPhys(vaddr, 'write'), BigInt.asUintN(64, value), true);
      return;
    }
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, value), true);
    this.write(vaddr, b);
  }

  /** Reads a NUL-terminated UTF-8 string of at most maxLen bytes (NUL excluded); null when no NUL in reach. */
  readCString(vaddr: number, maxLen: number): string | null {
    const bytes = this.phys.bytes;
    const chunks: Uint8Array[] = [];
    let total = 0;
    let va = vaddr;
    for (;;) {
      const pa = this.userPhys(va, 'read');
      const n = PAGE_SIZE - (va % PAGE_SIZE);
      const page = bytes.subarray(pa, pa + n);
      const nul = page.indexOf(0);
      const take = nul < 0 ? n : nul;
      if (total + take > maxLen) return null;
      chunks.push(page.slice(0, take));
      total += take;
      if (nul >= 0) break;
      va += n;
    }
    const all = chunks.length === 1 ? chunks[0]! : concat(chunks, total);
    return Buffer.from(all.buffer, all.byteOffset, all.length).toString('utf8');
  }

  // ---- internals ----

  private hasPages(pages: number): boolean {
    try {
      this.ensureAvailable(pages);
      return true;
    } catch (e) {
      if (e instanceof OutOfGuestMemoryError) return false;
      throw e;
    }
  }

  private copyIn(vaddr: number, data: Uint8Array, access: Access): void {
    const bytes = this.phys.bytes;
    let done = 0;
    while (done < data.length) {
      const va = vaddr + done;
      const pa = this.userPhys(va, access);
      const n = Math.min(data.length - done, PAGE_SIZE - (va % PAGE_SIZE));
      bytes.set(data.subarray(done, done + n), pa);
      done += n;
    }
  }

  private checkUserRange(start: number, length: number, what: string): number {
    const end = start + pageUp(length);
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(length) || !isPageAligned(start) || length <= 0 || start < 0 || end > USER_TOP) {
      throw new GuestInternalError(`${what}: bad user range 0x${start.toString(16)}+0x${length.toString(16)}`);
    }
    return end;
  }

  /** Allocates and maps [start, end) (which must be free) and records the VMA. */
  private populate(start: number, end: number, prot: number, kind: VmaKind, name: string): void {
    this.mapGeneration++;
    prot &= PROT_MASK;
    this.pageTables.ensureTables(start, end);
    for (let va = start; va < end; va += PAGE_SIZE) this.pageTables.mapUserPage(va, this.allocPage(), prot);
    this.insertVma({ start, end, prot, kind, name });
  }

  /** Moves the pages of [oldStart, oldStart+oldLen) to dest (free) and grows to newLen with fresh pages. */
  private move(oldStart: number, oldLen: number, dest: number, newLen: number, prot: number, kind: VmaKind, name: string): void {
    this.mapGeneration++;
    const oldEnd = oldStart + oldLen;
    this.splitAt(oldStart);
    this.splitAt(oldEnd);
    const i = this.firstEndingAfter(oldStart);
    let j = i;
    while (j < this.vmaList.length && this.vmaList[j]!.start < oldEnd) j++;
    this.vmaList.splice(i, j - i);
    const pt = this.pageTables;
    pt.ensureTables(dest, dest + newLen);
    for (let off = 0; off < oldLen; off += PAGE_SIZE) {
      const e = pt.unmapUserPage(oldStart + off);
      if (e & PM_MAPPED) pt.mapUserPage(dest + off, e - (e & PM_FLAG_MASK), prot, (e & PM_IO) !== 0);
      else pt.mapUserPage(dest + off, this.allocPage(), prot);
    }
    for (let off = oldLen; off < newLen; off += PAGE_SIZE) pt.mapUserPage(dest + off, this.allocPage(), prot);
    this.insertVma({ start: dest, end: dest + newLen, prot, kind, name });
    this.tlbGeneration++;
  }

  private releasePages(v: Vma): void {
    for (let va = v.end - PAGE_SIZE; va >= v.start; va -= PAGE_SIZE) {
      const e = this.pageTables.unmapUserPage(va);
      if (e & PM_MAPPED && !(e & PM_IO)) this.freePage(e - (e & PM_FLAG_MASK));
    }
  }

  private countRamPages(start: number, end: number): number {
    let n = 0;
    for (let i = this.firstEndingAfter(start); i < this.vmaList.length; i++) {
      const v = this.vmaList[i]!;
      if (v.start >= end) break;
      if (v.kind !== 'io') n += (Math.min(v.end, end) - Math.max(v.start, start)) / PAGE_SIZE;
    }
    return n;
  }

  /** Index of the first VMA with end > addr (vmaList.length if none). */
  private firstEndingAfter(addr: number): number {
    let lo = 0;
    let hi = this.vmaList.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.vmaList[mid]!.end > addr) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  private splitAt(addr: number): void {
    const i = this.firstEndingAfter(addr);
    const v = this.vmaList[i];
    if (v !== undefined && v.start < addr && addr < v.end) {
      this.vmaList.splice(i + 1, 0, { ...v, start: addr });
      v.end = addr;
    }
  }

  private insertVma(vma: Vma): void {
    const i = this.firstEndingAfter(vma.start);
    const next = this.vmaList[i];
    if (next !== undefined && next.start < vma.end) {
      throw new GuestInternalError(`VMA 0x${vma.start.toString(16)}-0x${vma.end.toString(16)} overlaps 0x${next.start.toString(16)}`);
    }
    this.vmaList.splice(i, 0, vma);
    this.mergeAll();
  }

  private mergeAll(): void {
    const list = this.vmaList;
    for (let i = list.length - 1; i > 0; i--) {
      const a = list[i - 1]!;
      const b = list[i]!;
      if (a.end === b.start && a.prot === b.prot && a.kind === b.kind && a.name === b.name && MERGEABLE.has(a.kind)) {
        a.end = b.end;
        list.splice(i, 1);
      }
    }
  }
}

const PROT_READ_WRITE = 3;

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** Checks an AddressSpaceState's shape and ranges; errors name the field (`prefix.vmas[2].end`). */
export function validateAddressSpaceState(value: unknown, memSize: number, prefix = 'addressSpace'): AddressSpaceState {
  const s = asObject(value, prefix);
  if (s.version !== ADDRESS_SPACE_STATE_VERSION) {
    fail(`${prefix}.version`, `expected ${ADDRESS_SPACE_STATE_VERSION}, got ${String(s.version)}`);
  }
  const size = asInt(s.memSize, `${prefix}.memSize`);
  if (size !== memSize) fail(`${prefix}.memSize`, `saved for ${size} bytes of guest memory, restoring into ${memSize}`);
  const page = (v: unknown, field: string, max: number): number => {
    const n = asInt(v, field, 0, max);
    if (n % PAGE_SIZE !== 0) fail(field, 'not page aligned');
    return n;
  };
  const nextPage = page(s.nextPage, `${prefix}.nextPage`, memSize);
  if (nextPage < KERNEL_RESERVED_PHYS_END) fail(`${prefix}.nextPage`, 'inside the reserved kernel area');
  const freePages = asArray(s.freePages, `${prefix}.freePages`).map((p, i) => {
    const pa = page(p, `${prefix}.freePages[${i}]`, nextPage - PAGE_SIZE);
    if (pa < KERNEL_RESERVED_PHYS_END) fail(`${prefix}.freePages[${i}]`, 'inside the reserved kernel area');
    return pa;
  });
  const pt = asObject(s.pageTables, `${prefix}.pageTables`);
  const ptp = `${prefix}.pageTables`;
  const pml4 = page(pt.pml4, `${ptp}.pml4`, nextPage - PAGE_SIZE);
  const pml4Alternate = page(pt.pml4Alternate, `${ptp}.pml4Alternate`, nextPage - PAGE_SIZE);
  const tables = asArray(pt.tables, `${ptp}.tables`);
  if (tables.length % 2 !== 0) fail(`${ptp}.tables`, 'not (key, address) pairs');
  const tableNums = tables.map((t, i) =>
    i % 2 === 0 ? asInt(t, `${ptp}.tables[${i}]`, 1) : page(t, `${ptp}.tables[${i}]`, nextPage - PAGE_SIZE),
  );
  for (let i = 0; i < tableNums.length; i += 2) {
    const level = tableNums[i]! & 3;
    if (level === 0) fail(`${ptp}.tables[${i}]`, 'bad table level');
  }
  const pages = asArray(pt.pages, `${ptp}.pages`);
  if (pages.length % 3 !== 0) fail(`${ptp}.pages`, 'not (vpn, entry, count) triples');
  const pageNums = pages.map((p, i) => {
    const f = `${ptp}.pages[${i}]`;
    const k = i % 3;
    if (k === 0) return asInt(p, f, 0, USER_TOP / PAGE_SIZE - 1);
    if (k === 2) return asInt(p, f, 1, USER_TOP / PAGE_SIZE);
    const e = asInt(p, f, 1);
    if (!(e & PM_MAPPED)) fail(f, 'entry without the mapped flag');
    if (!(e & PM_IO) && e - (e & PM_FLAG_MASK) >= nextPage) fail(f, 'physical page beyond the allocated memory');
    return e;
  });
  const kernel = asArray(pt.kernel, `${ptp}.kernel`).map((k, i) => {
    const f = `${ptp}.kernel[${i}]`;
    const o = asObject(k, f);
    return {
      linear: asInt(o.linear, `${f}.linear`, 2 ** 47, 2 ** 48 - PAGE_SIZE),
      phys: page(o.phys, `${f}.phys`, KERNEL_RESERVED_PHYS_END - PAGE_SIZE),
      pages: asInt(o.pages, `${f}.pages`, 1, KERNEL_RESERVED_PHYS_END / PAGE_SIZE),
      prot: asInt(o.prot, `${f}.prot`, 0, PROT_MASK),
      user: asBool(o.user, `${f}.user`),
    };
  });
  let prevEnd = 0;
  const vmas = asArray(s.vmas, `${prefix}.vmas`).map((x, i) => {
    const f = `${prefix}.vmas[${i}]`;
    const o = asObject(x, f);
    const start = page(o.start, `${f}.start`, USER_TOP - PAGE_SIZE);
    const end = page(o.end, `${f}.end`, USER_TOP);
    if (end <= start) fail(`${f}.end`, 'not above start');
    if (start < prevEnd) fail(`${f}.start`, 'overlaps or precedes the previous VMA');
    prevEnd = end;
    return {
      start,
      end,
      prot: asInt(o.prot, `${f}.prot`, 0, PROT_MASK),
      kind: asOneOf(o.kind, `${f}.kind`, VMA_KINDS),
      name: asString(o.name, `${f}.name`),
    };
  });
  const brkStart = asInt(s.brkStart, `${prefix}.brkStart`, 0, USER_TOP);
  const brk = asInt(s.brk, `${prefix}.brk`, brkStart, USER_TOP);
  const tlbGeneration = asInt(s.tlbGeneration, `${prefix}.tlbGeneration`);
  const mapGeneration = s.mapGeneration === undefined ? 0 : asInt(s.mapGeneration, `${prefix}.mapGeneration`);
  return {
    version: ADDRESS_SPACE_STATE_VERSION,
    memSize,
    nextPage,
    freePages,
    pageTables: { pml4, pml4Alternate, tables: tableNums, pages: pageNums, kernel },
    vmas,
    brkStart,
    brk,
    tlbGeneration,
    mapGeneration,
  };
}
