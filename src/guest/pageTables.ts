/**
 * x86-64 4-level page tables (4 KiB leaves only) kept in guest physical memory, where KVM's
 * MMU walks them, mirrored by a JS page map that the JS CPUs use instead of walking memory.
 *
 * Two PML4 pages with identical contents: switching CR3 between them forces a full TLB flush
 * (the KVM CPU does that after a mapping was removed or downgraded). Leaves are written with
 * A and D already set so no CPU model ever writes page-table memory (keeps memory identical
 * whichever model ran).
 */
import { GuestInternalError, GuestMemoryFault } from './errors.js';
import type { PhysicalMemory } from './physmem.js';
import { PAGE_SIZE } from './physmem.js';

/** Protection bits, as in mmap's PROT_*. */
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const PROT_EXEC = 4;
export const PROT_MASK = 7;

// Page-table entry bits.
export const PTE_P = 0x1;
export const PTE_RW = 0x2;
export const PTE_US = 0x4;
export const PTE_A = 0x20;
export const PTE_D = 0x40;
/** NX is bit 63: bit 31 of the high 32-bit half. */
export const PTE_NX_HIGH = 0x80000000;
/** Intermediate entries allow everything: permissions are decided at the leaf. */
const INTERMEDIATE_FLAGS = PTE_P | PTE_RW | PTE_US | PTE_A;

/**
 * JS page-map entry: the physical page address plus these flags in its low 12 bits
 * (0 = no mapping). `PM_READ` means present (x86 cannot deny reads of a present page).
 */
export const PM_MAPPED = 1;
export const PM_READ = 2;
export const PM_WRITE = 4;
export const PM_EXEC = 8;
/** The physical page lies outside guest RAM (MMIO, e.g. the m5op window). */
export const PM_IO = 16;
export const PM_FLAG_MASK = 0xfff;

const TWO_32 = 2 ** 32;
const SPAN_PT = 2 ** 21;
const SPAN_PD = 2 ** 30;
const SPAN_PDPT = 2 ** 39;
const LINEAR_MASK = (1n << 48n) - 1n;

export type Access = 'read' | 'write' | 'exec';

/** Page-map flags a user page with protection `prot` gets. */
export function protToPageFlags(prot: number): number {
  let f = PM_MAPPED;
  if (prot & PROT_MASK) f |= PM_READ;
  if (prot & PROT_WRITE) f |= PM_WRITE;
  if (prot & PROT_EXEC) f |= PM_EXEC;
  return f;
}

/** A supervisor-only mapping, remembered so a restore can rewrite it. */
export interface KernelMapping {
  /** Lower 48 bits of the (canonical upper-half) virtual address. */
  linear: number;
  phys: number;
  pages: number;
  prot: number;
  /** US=1 on the leaves (a workaround knob for hosts whose syscall entry stays at CPL3); normally false. */
  user: boolean;
}

export interface PageTablesState {
  pml4: number;
  pml4Alternate: number;
  /** Flattened (key, physical address) pairs; key = (linear >> shift) * 4 + level. */
  tables: number[];
  /** Flattened runs (vpn, first entry, count): consecutive pages on consecutive physical pages with equal flags. */
  pages: number[];
  kernel: KernelMapping[];
}

export class PageTables {
  readonly cr3: number;
  readonly cr3Alternate: number;
  /** key (prefix * 4 + level, level 3 = PDPT, 2 = PD, 1 = PT) → physical address of the table. */
  private readonly tables = new Map<number, number>();
  /** (vaddr >> 21) → 512 page-map entries. */
  private readonly regions = new Map<number, Float64Array>();
  private readonly kernel: KernelMapping[] = [];
  private lastPtKey = -1;
  private lastRegionKey = -1;
  private lastRegion: Float64Array | undefined;
  private lastPt = 0;
  private mappedCount = 0;

  constructor(
    private readonly phys: PhysicalMemory,
    private readonly allocTablePage: () => number,
    state?: PageTablesState,
    /** The tables in guest memory already match `state` (shared memory, a handoff): rebuild only the JS map. */
    memoryCurrent = false,
  ) {
    if (state) {
      this.cr3 = state.pml4;
      this.cr3Alternate = state.pml4Alternate;
      if (memoryCurrent) this.adoptFrom(state);
      else this.rebuildFrom(state);
    } else {
      this.cr3 = allocTablePage();
      this.cr3Alternate = allocTablePage();
    }
  }

  /** Number of user pages with a mapping (including PROT_NONE ones). */
  get mappedPages(): number {
    return this.mappedCount;
  }

  // ---- user pages (JS map + memory) ----

  /** Maps one user page. `io` marks a physical page outside RAM (never freed). */
  mapUserPage(vaddr: number, paddr: number, prot: number, io = false): void {
    const flags = protToPageFlags(prot) | (io ? PM_IO : 0);
    this.setEntry(vaddr, paddr + flags);
    this.writeLeaf(vaddr, paddr, prot, true);
  }

  /** Creates the page tables covering [start, end) now, so data pages allocated next stay contiguous. */
  ensureTables(start: number, end: number): void {
    for (let va = start - (start % SPAN_PT); va < end; va += SPAN_PT) this.table(va, 1, true);
  }

  /** Removes a user page's mapping; returns its previous entry (0 if none). */
  unmapUserPage(vaddr: number): number {
    const region = this.regions.get(Math.floor(vaddr / SPAN_PT));
    if (region === undefined) return 0;
    const i = (vaddr / PAGE_SIZE) & 511;
    const old = region[i]!;
    if (old === 0) return 0;
    region[i] = 0;
    this.mappedCount--;
    const slot = this.leafSlot(vaddr, false);
    if (slot >= 0) {
      this.phys.view.setUint32(slot, 0, true);
      this.phys.view.setUint32(slot + 4, 0, true);
    }
    return old;
  }

  /** Changes a mapped user page's protection; returns its previous entry (0 if unmapped: nothing done). */
  protectUserPage(vaddr: number, prot: number): number {
    const old = this.entry(vaddr);
    if (old === 0) return 0;
    const paddr = old - (old & PM_FLAG_MASK);
    this.setEntry(vaddr, paddr + (protToPageFlags(prot) | (old & PM_IO)));
    this.writeLeaf(vaddr, paddr, prot, true);
    return old;
  }

  /** The page-map entry for a user address (0 when unmapped). */
  entry(vaddr: number): number {
    const region = this.regions.get(Math.floor(vaddr / SPAN_PT));
    return region === undefined ? 0 : region[(vaddr / PAGE_SIZE) & 511]!;
  }

  /** Physical address of a user access, or a GuestMemoryFault. */
  translate(vaddr: number, access: Access): number {
    const need = access === 'read' ? PM_READ : access === 'write' ? PM_WRITE : PM_EXEC;
    const key = Math.floor(vaddr / SPAN_PT);
    let region: Float64Array | undefined;
    if (key === this.lastRegionKey) {
      region = this.lastRegion;
    } else {
      region = this.regions.get(key);
      if (region !== undefined) {
        // regions are never removed, so caching the last one needs no invalidation
        this.lastRegionKey = key;
        this.lastRegion = region;
      }
    }
    const e = region === undefined ? 0 : region[(vaddr / PAGE_SIZE) & 511]!;
    if ((e & need) === 0) throw new GuestMemoryFault(toBigAddress(vaddr), access, e === 0 ? 'unmapped' : 'protection');
    return e - (e & PM_FLAG_MASK) + (vaddr & (PAGE_SIZE - 1));
  }

  /** Calls `fn` for every mapped user page in address order. */
  forEachUserPage(fn: (vaddr: number, entry: number) => void): void {
    const keys = [...this.regions.keys()].sort((a, b) => a - b);
    for (const key of keys) {
      const region = this.regions.get(key)!;
      for (let i = 0; i < 512; i++) {
        const e = region[i]!;
        if (e !== 0) fn(key * SPAN_PT + i * PAGE_SIZE, e);
      }
    }
  }

  // ---- supervisor pages (memory only) ----

  /** Whether an upper-half address (as a double, only page precision needed) is a mapped supervisor page. */
  isKernelMapped(address: number): boolean {
    const linear = address - (2 ** 64 - 2 ** 48);
    return this.kernel.some((k) => linear >= k.linear && linear < k.linear + k.pages * PAGE_SIZE);
  }

  /** Maps supervisor-only pages at an upper-half address (`vaddr` as a canonical 64-bit value). */
  mapKernel(vaddr: bigint, paddr: number, pages: number, prot: number, user = false): void {
    const linear = Number(vaddr & LINEAR_MASK);
    for (let i = 0; i < pages; i++) this.writeLeaf(linear + i * PAGE_SIZE, paddr + i * PAGE_SIZE, prot, user);
    this.kernel.push({ linear, phys: paddr, pages, prot, user });
  }

  /** Physical pages holding page tables (both PML4s included). */
  tablePages(): number[] {
    return [this.cr3, this.cr3Alternate, ...this.tables.values()];
  }

  snapshot(): PageTablesState {
    const tables: number[] = [];
    for (const k of [...this.tables.keys()].sort((a, b) => a - b)) tables.push(k, this.tables.get(k)!);
    const pages: number[] = [];
    let runVpn = -1;
    let runEntry = 0;
    let runCount = 0;
    this.forEachUserPage((vaddr, e) => {
      const vpn = vaddr / PAGE_SIZE;
      if (runCount > 0 && vpn === runVpn + runCount && e === runEntry + runCount * PAGE_SIZE) {
        runCount++;
        return;
      }
      if (runCount > 0) pages.push(runVpn, runEntry, runCount);
      runVpn = vpn;
      runEntry = e;
      runCount = 1;
    });
    if (runCount > 0) pages.push(runVpn, runEntry, runCount);
    return {
      pml4: this.cr3,
      pml4Alternate: this.cr3Alternate,
      tables,
      pages,
      kernel: this.kernel.map((k) => ({ ...k })),
    };
  }

  // ---- internals ----

  /** Takes the JS side (table map, page map, kernel list) from a state whose tables memory already holds. */
  private adoptFrom(state: PageTablesState): void {
    for (let i = 0; i + 1 < state.tables.length; i += 2) this.tables.set(state.tables[i]!, state.tables[i + 1]!);
    for (let i = 0; i + 2 < state.pages.length; i += 3) {
      const vpn = state.pages[i]!;
      const first = state.pages[i + 1]!;
      const count = state.pages[i + 2]!;
      for (let j = 0; j < count; j++) this.setEntry((vpn + j) * PAGE_SIZE, first + j * PAGE_SIZE);
    }
    for (const k of state.kernel) this.kernel.push({ ...k });
  }

  /** Rewrites every table from the saved description (memory may or may not already hold them). */
  private rebuildFrom(state: PageTablesState): void {
    const bytes = this.phys.bytes;
    bytes.fill(0, state.pml4, state.pml4 + PAGE_SIZE);
    bytes.fill(0, state.pml4Alternate, state.pml4Alternate + PAGE_SIZE);
    const entries: [number, number][] = [];
    for (let i = 0; i + 1 < state.tables.length; i += 2) entries.push([state.tables[i]!, state.tables[i + 1]!]);
    // Parents before children: PDPTs (level 3), then PDs, then PTs.
    entries.sort((a, b) => (b[0] & 3) - (a[0] & 3));
    for (const [key, table] of entries) {
      bytes.fill(0, table, table + PAGE_SIZE);
      this.tables.set(key, table);
      this.linkTable(key, table);
    }
    for (let i = 0; i + 2 < state.pages.length; i += 3) {
      const vpn = state.pages[i]!;
      const first = state.pages[i + 1]!;
      const count = state.pages[i + 2]!;
      const flags = first & PM_FLAG_MASK;
      const paddr = first - flags;
      const prot = pageFlagsToProt(flags);
      for (let j = 0; j < count; j++) {
        const vaddr = (vpn + j) * PAGE_SIZE;
        this.setEntry(vaddr, paddr + j * PAGE_SIZE + flags);
        this.writeLeaf(vaddr, paddr + j * PAGE_SIZE, prot, true);
      }
    }
    for (const k of state.kernel) {
      for (let i = 0; i < k.pages; i++) this.writeLeaf(k.linear + i * PAGE_SIZE, k.phys + i * PAGE_SIZE, k.prot, k.user);
      this.kernel.push({ ...k });
    }
  }

  private setEntry(vaddr: number, e: number): void {
    const key = Math.floor(vaddr / SPAN_PT);
    let region = this.regions.get(key);
    if (region === undefined) {
      region = new Float64Array(512);
      this.regions.set(key, region);
    }
    const i = (vaddr / PAGE_SIZE) & 511;
    if (region[i] === 0) this.mappedCount++;
    region[i] = e;
  }

  private writeLeaf(linear: number, paddr: number, prot: number, user: boolean): void {
    const slot = this.leafSlot(linear, true);
    let low = paddr % TWO_32;
    let high = Math.floor(paddr / TWO_32);
    if (prot & PROT_MASK) low |= PTE_P | PTE_A | PTE_D;
    if (prot & PROT_WRITE) low |= PTE_RW;
    if (user) low |= PTE_US;
    if (!(prot & PROT_EXEC)) high |= PTE_NX_HIGH;
    this.phys.view.setUint32(slot, low >>> 0, true);
    this.phys.view.setUint32(slot + 4, high >>> 0, true);
  }

  /** Physical address of the leaf slot for `linear`, creating tables on the way (or -1). */
  private leafSlot(linear: number, create: boolean): number {
    const key = Math.floor(linear / SPAN_PT) * 4 + 1;
    let pt: number;
    if (key === this.lastPtKey) {
      pt = this.lastPt;
    } else {
      pt = this.table(linear, 1, create);
      if (pt < 0) return -1;
      this.lastPtKey = key;
      this.lastPt = pt;
    }
    return pt + ((linear / PAGE_SIZE) & 511) * 8;
  }

  private table(linear: number, level: 1 | 2 | 3, create: boolean): number {
    const span = level === 1 ? SPAN_PT : level === 2 ? SPAN_PD : SPAN_PDPT;
    const key = Math.floor(linear / span) * 4 + level;
    const existing = this.tables.get(key);
    if (existing !== undefined) return existing;
    if (!create) return -1;
    if (level < 3) this.table(linear, (level + 1) as 2 | 3, true);
    const t = this.allocTablePage();
    if (t % PAGE_SIZE !== 0 || t + PAGE_SIZE > this.phys.size) {
      throw new GuestInternalError(`page-table page 0x${t.toString(16)} is not a page of guest memory`);
    }
    this.tables.set(key, t);
    this.linkTable(key, t);
    return t;
  }

  /** Writes the entry pointing at table `key` into its parent (both PML4s for a PDPT). */
  private linkTable(key: number, table: number): void {
    const level = key & 3;
    const prefix = (key - level) / 4;
    const index = prefix % 512;
    const low = (table % TWO_32) | INTERMEDIATE_FLAGS;
    const high = Math.floor(table / TWO_32);
    const v = this.phys.view;
    if (level === 3) {
      for (const pml4 of [this.cr3, this.cr3Alternate]) {
        v.setUint32(pml4 + index * 8, low >>> 0, true);
        v.setUint32(pml4 + index * 8 + 4, high, true);
      }
      return;
    }
    const parent = this.tables.get(Math.floor(prefix / 512) * 4 + level + 1);
    if (parent === undefined) throw new GuestInternalError(`page table ${key} has no parent table`);
    v.setUint32(parent + index * 8, low >>> 0, true);
    v.setUint32(parent + index * 8 + 4, high, true);
  }
}

export function pageFlagsToProt(flags: number): number {
  if (!(flags & PM_READ)) return 0;
  return PROT_READ | (flags & PM_WRITE ? PROT_WRITE : 0) | (flags & PM_EXEC ? PROT_EXEC : 0);
}

function toBigAddress(vaddr: number): bigint {
  return Number.isFinite(vaddr) && vaddr >= 0 ? BigInt(Math.trunc(vaddr)) : 0n;
}
