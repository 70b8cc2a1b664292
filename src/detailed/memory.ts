/**
 * Guest memory as the functional core sees it: virtual accesses with user permissions through
 * the address space's page map, cached in a small direct-mapped TLB per access kind. Faults are
 * raised exactly as the hardware would (#PF with error code and address, #GP for non-canonical
 * addresses), so the core reports what KVM reports.
 */
import type { AddressSpace } from '../guest/addressSpace.js';
import { PM_EXEC, PM_FLAG_MASK, PM_IO, PM_READ, PM_WRITE } from '../guest/pageTables.js';
import { GuestException, GuestIoAccess, VEC_GP, VEC_PF } from './errors.js';
import type { MemoryTimestamps } from './memoryTimestamps.js';

const PAGE = 4096;
const TLB_SIZE = 4096;
const USER_LIMIT = 2 ** 47;
const CANONICAL_HIGH = 2 ** 64 - 2 ** 47;

// #PF error code bits
const PF_P = 1;
const PF_W = 2;
const PF_U = 4;
const PF_I = 16;

const enum Kind {
  Read = 0,
  Write = 1,
  Exec = 2,
}

export class GuestMemory {
  readonly bytes: Uint8Array;
  readonly dv: DataView;
  /** Tags (virtual page numbers) and physical page bases, per access kind. */
  private readonly tag: Float64Array[] = [0, 1, 2].map(() => new Float64Array(TLB_SIZE).fill(-1));
  private readonly base: Float64Array[] = [0, 1, 2].map(() => new Float64Array(TLB_SIZE));
  // Direct references for the hot accessors (no array-of-arrays lookup).
  private readonly tagRead = this.tag[Kind.Read]!;
  private readonly baseRead = this.base[Kind.Read]!;
  private readonly tagWrite = this.tag[Kind.Write]!;
  private readonly baseWrite = this.base[Kind.Write]!;
  private generation: number;
  /** Pages holding decoded code: writes to them go the slow way and call onCodeWrite. */
  readonly codePages = new Set<number>();
  onCodeWrite: (vpn: number) => void = () => {};
  /** High half of the last read64. */
  hi = 0;
  /** An I/O access being re-executed after the CPU served it: its answer. */
  ioAnswer: { address: number; value: number } | null = null;
  /**
   * Called with the physical page base before the first write to a page after flushTlb (every
   * write whose translation is not cached comes through here): an undo log hooks in (hostRate.ts).
   */
  writeWatch: ((physPage: number) => void) | null = null;
  /** Likewise for reads (data and instruction fetches): the pages an execution touched. */
  readWatch: ((physPage: number) => void) | null = null;
  /**
   * Where data accesses leave their time and line (memoryTimestamps.ts; null: not recorded).
   * Set with recordTimestamps: every access goes through a TLB entry filled after that.
   */
  private stamps: MemoryTimestamps | null = null;

  /**
   * Tracing (the detailed CPU's functional core): each access also records its address, size
   * and direction in addrs/sizes/writes[0, count), so µops carry real addresses. A flag rather
   * than a subclass: the atomic CPU and the detailed CPU's core run the same instruction
   * closures, and one memory class keeps their call sites monomorphic (a subclass slowed the
   * atomic fast-forward by 15–40% once the detailed CPU had run).
   */
  readonly tracing: boolean;
  addrs = new Float64Array(64);
  sizes = new Int32Array(64);
  writes = new Uint8Array(64);
  count = 0;

  constructor(readonly aspace: AddressSpace, tracing = false) {
    this.tracing = tracing;
    this.bytes = aspace.phys.bytes;
    this.dv = aspace.phys.view;
    this.generation = aspace.tlbGeneration;
  }

  clearTrace(): void {
    this.count = 0;
  }

  private note(addr: number, size: number, write: number): void {
    const i = this.count++;
    if (i >= this.addrs.length) this.grow();
    this.addrs[i] = addr;
    this.sizes[i] = size;
    this.writes[i] = write;
  }

  /** rep string instructions can make thousands of accesses. */
  private grow(): void {
    const n = this.addrs.length * 2;
    const a = new Float64Array(n);
    a.set(this.addrs);
    const s = new Int32Array(n);
    s.set(this.sizes);
    const w = new Uint8Array(n);
    w.set(this.writes);
    this.addrs = a;
    this.sizes = s;
    this.writes = w;
  }

  /** Drops cached translations when mappings were removed or downgraded. */
  syncTlb(): void {
    if (this.aspace.tlbGeneration !== this.generation) {
      this.generation = this.aspace.tlbGeneration;
      this.flushTlb();
    }
  }

  flushTlb(): void {
    for (const t of this.tag) t.fill(-1);
  }

  /** Records every data access from now on in `rec` (null: stops). */
  recordTimestamps(rec: MemoryTimestamps | null): void {
    this.stamps = rec;
    if (rec) rec.attach(this);
    else this.flushTlb();
  }

  /** Stamps the line of physical address `p` (an access of kind `k`). */
  private stampLine(p: number, k: Kind): void {
    const st = this.stamps!;
    const l = p >>> 6;
    st.stamp[l] = ++st.clock;
    if (k === Kind.Write) st.written[l] = 1;
  }

  /** Physical address of `addr` for an access of kind `k`; fills the TLB or raises the fault. */
  private miss(addr: number, k: Kind, size: number): number {
    if (!(addr >= 0 && addr < USER_LIMIT)) {
      // Upper-half canonical addresses are supervisor pages (a #PF from user mode); the rest #GP.
      if (addr >= CANONICAL_HIGH && addr < 2 ** 64) {
        throw new GuestException(VEC_PF, PF_U | errBits(k) | (this.aspace.pageTables.isKernelMapped(addr) ? PF_P : 0), addr);
      }
      throw new GuestException(VEC_GP, 0, 0);
    }
    const e = this.aspace.pageTables.entry(addr);
    const need = k === Kind.Read ? PM_READ : k === Kind.Write ? PM_WRITE : PM_EXEC;
    if ((e & need) === 0) {
      throw new GuestException(VEC_PF, PF_U | errBits(k) | (e !== 0 ? PF_P : 0), addr);
    }
    if (e & PM_IO) {
      const ans = this.ioAnswer;
      if (ans && ans.address === addr) {
        this.ioAnswer = null;
        return -2 - ans.value; // served: ≤ -2 tells the caller to take the answer, not memory
      }
      throw new GuestIoAccess(addr, size, k === Kind.Write);
    }
    const vpn = Math.floor(addr / PAGE);
    const physPage = e - (e & PM_FLAG_MASK);
    if (k === Kind.Write) {
      if (this.writeWatch !== null) this.writeWatch(physPage);
    } else if (this.readWatch !== null) this.readWatch(physPage);
    if (this.stamps !== null) this.stamps.noteFill(physPage, vpn);
    if (!(k === Kind.Write && this.codePages.has(vpn))) {
      const i = vpn & (TLB_SIZE - 1);
      this.tag[k]![i] = vpn;
      this.base[k]![i] = physPage;
    } else {
      this.onCodeWrite(vpn);
    }
    return physPage + (addr % PAGE);
  }

  /** Physical address for a `size`-byte access that does not cross a page, or -1 when it does. */
  private phys(addr: number, k: Kind, size: number): number {
    const vpn = Math.floor(addr / PAGE);
    const off = addr - vpn * PAGE;
    if (off + size > PAGE || !(addr >= 0)) return -1;
    const i = vpn & (TLB_SIZE - 1);
    const p = this.tag[k]![i] === vpn ? this.base[k]![i]! + off : this.miss(addr, k, size);
    if (this.stamps !== null && p >= 0 && k !== Kind.Exec) this.stampLine(p, k);
    return p;
  }

  read8(addr: number): number {
    if (this.tracing) this.note(addr, 1, 0);
    const p = this.phys(addr, Kind.Read, 1);
    if (p >= 0) return this.bytes[p]!;
    if (p < -1) return this.ioValue(p);
    return this.bytes[this.miss(addr, Kind.Read, 1)]!;
  }

  read16(addr: number): number {
    if (this.tracing) this.note(addr, 2, 0);
    const p = this.phys(addr, Kind.Read, 2);
    if (p >= 0) return this.dv.getUint16(p, true);
    if (p < -1) return this.ioValue(p) & 0xffff;
    return this.read8(addr) | (this.read8(addr + 1) << 8);
  }

  read32(addr: number): number {
    if (this.tracing) this.note(addr, 4, 0);
    const vpn = Math.floor(addr / PAGE);
    const off = addr - vpn * PAGE;
    const i = vpn & (TLB_SIZE - 1);
    if (this.tagRead[i] === vpn && off <= PAGE - 4) {
      const p = this.baseRead[i]! + off;
      if (this.stamps !== null) this.stampLine(p, Kind.Read);
      return this.dv.getUint32(p, true);
    }
    const p = this.phys(addr, Kind.Read, 4);
    if (p >= 0) return this.dv.getUint32(p, true);
    if (p < -1) return this.ioValue(p) >>> 0;
    return this.splitRead(addr, 4);
  }

  /** Returns the low half; the high half is left in `hi`. */
  read64(addr: number): number {
    if (this.tracing) this.note(addr, 8, 0);
    const vpn = Math.floor(addr / PAGE);
    const off = addr - vpn * PAGE;
    const i = vpn & (TLB_SIZE - 1);
    if (this.tagRead[i] === vpn && off <= PAGE - 8) {
      const p = this.baseRead[i]! + off;
      if (this.stamps !== null) this.stampLine(p, Kind.Read);
      this.hi = this.dv.getUint32(p + 4, true);
      return this.dv.getUint32(p, true);
    }
    const p = this.phys(addr, Kind.Read, 8);
    if (p >= 0) {
      this.hi = this.dv.getUint32(p + 4, true);
      return this.dv.getUint32(p, true);
    }
    if (p < -1) {
      this.hi = 0;
      return this.ioValue(p) >>> 0;
    }
    const lo = this.splitRead(addr, 4);
    this.hi = this.splitRead(addr + 4, 4);
    return lo;
  }

  // Reads of a read-modify-write operand (add [m], r; xchg; bts…): translated, and faulting, as
  // writes, the way the hardware's locked/RMW load does (#PF error code W=1 on a missing page).

  rmw8(addr: number): number {
    if (this.tracing) this.note(addr, 1, 0);
    const p = this.phys(addr, Kind.Write, 1);
    if (p >= 0) return this.bytes[p]!;
    if (p < -1) return this.ioValue(p);
    return this.bytes[this.miss(addr, Kind.Write, 1)]!;
  }

  rmw16(addr: number): number {
    if (this.tracing) this.note(addr, 2, 0);
    const p = this.phys(addr, Kind.Write, 2);
    if (p >= 0) return this.dv.getUint16(p, true);
    if (p < -1) return this.ioValue(p) & 0xffff;
    this.probeWrite(addr, 2);
    return this.read16(addr);
  }

  rmw32(addr: number): number {
    if (this.tracing) this.note(addr, 4, 0);
    const p = this.phys(addr, Kind.Write, 4);
    if (p >= 0) return this.dv.getUint32(p, true);
    if (p < -1) return this.ioValue(p) >>> 0;
    this.probeWrite(addr, 4);
    return this.read32(addr);
  }

  /** Returns the low half; the high half is left in `hi`. */
  rmw64(addr: number): number {
    if (this.tracing) this.note(addr, 8, 0);
    const p = this.phys(addr, Kind.Write, 8);
    if (p >= 0) {
      this.hi = this.dv.getUint32(p + 4, true);
      return this.dv.getUint32(p, true);
    }
    if (p < -1) {
      this.hi = 0;
      return this.ioValue(p) >>> 0;
    }
    this.probeWrite(addr, 8);
    return this.read64(addr);
  }

  write8(addr: number, v: number): void {
    if (this.tracing) this.note(addr, 1, 1);
    const p = this.phys(addr, Kind.Write, 1);
    if (p >= 0) this.bytes[p] = v;
    else if (p === -1) this.bytes[this.miss(addr, Kind.Write, 1)] = v;
  }

  write16(addr: number, v: number): void {
    if (this.tracing) this.note(addr, 2, 1);
    const p = this.phys(addr, Kind.Write, 2);
    if (p >= 0) this.dv.setUint16(p, v, true);
    else if (p === -1) this.splitWrite(addr, v, 2);
  }

  write32(addr: number, v: number): void {
    if (this.tracing) this.note(addr, 4, 1);
    const vpn = Math.floor(addr / PAGE);
    const off = addr - vpn * PAGE;
    const i = vpn & (TLB_SIZE - 1);
    if (this.tagWrite[i] === vpn && off <= PAGE - 4) {
      const p = this.baseWrite[i]! + off;
      if (this.stamps !== null) this.stampLine(p, Kind.Write);
      this.dv.setUint32(p, v, true);
      return;
    }
    const p = this.phys(addr, Kind.Write, 4);
    if (p >= 0) this.dv.setUint32(p, v, true);
    else if (p === -1) this.splitWrite(addr, v, 4);
  }

  write64(addr: number, lo: number, hi: number): void {
    if (this.tracing) this.note(addr, 8, 1);
    const vpn = Math.floor(addr / PAGE);
    const off = addr - vpn * PAGE;
    const i = vpn & (TLB_SIZE - 1);
    if (this.tagWrite[i] === vpn && off <= PAGE - 8) {
      const q = this.baseWrite[i]! + off;
      if (this.stamps !== null) this.stampLine(q, Kind.Write);
      this.dv.setUint32(q, lo, true);
      this.dv.setUint32(q + 4, hi, true);
      return;
    }
    const p = this.phys(addr, Kind.Write, 8);
    if (p >= 0) {
      this.dv.setUint32(p, lo, true);
      this.dv.setUint32(p + 4, hi, true);
    } else if (p === -1) {
      // Check both pages before writing anything: a faulting store changes no memory.
      this.probeWrite(addr, 8);
      this.splitWrite(addr, lo, 4);
      this.splitWrite(addr + 4, hi, 4);
    }
  }

  /** Reads `n` bytes into `out` (e.g. a 16-byte SSE load). */
  readBytes(addr: number, out: Uint8Array, n: number): void {
    if (this.tracing) this.note(addr, n, 0);
    const p = this.phys(addr, Kind.Read, n);
    if (p >= 0) {
      out.set(this.bytes.subarray(p, p + n));
      return;
    }
    for (let i = 0; i < n; i++) out[i] = this.read8(addr + i);
  }

  writeBytes(addr: number, src: Uint8Array, n: number): void {
    if (this.tracing) this.note(addr, n, 1);
    const p = this.phys(addr, Kind.Write, n);
    if (p >= 0) {
      this.bytes.set(src.subarray(0, n), p);
      return;
    }
    this.probeWrite(addr, n);
    for (let i = 0; i < n; i++) this.write8(addr + i, src[i]!);
  }

  /**
   * Raises the fault a write of `n` bytes at `addr` would raise, without writing. A fault on the
   * second page of a split access reports that page's first byte (as the hardware's CR2 does).
   */
  probeWrite(addr: number, n: number): void {
    this.probe(addr, n, Kind.Write);
  }

  probeRead(addr: number, n: number): void {
    this.probe(addr, n, Kind.Read);
  }

  private probe(addr: number, n: number, k: Kind): void {
    this.translateOrFault(addr, k);
    const last = addr + n - 1;
    const lastPage = last - (last % PAGE);
    if (lastPage > addr) this.translateOrFault(lastPage, k);
  }

  private translateOrFault(addr: number, k: Kind): number {
    const off = addr % PAGE;
    const vpn = (addr - off) / PAGE;
    const i = vpn & (TLB_SIZE - 1);
    if (addr >= 0 && this.tag[k]![i] === vpn) return this.base[k]![i]! + off;
    return this.miss(addr, k, 1);
  }

  /** Fetches up to `max` instruction bytes at `addr` (exec permission); stops at an unmapped page. */
  fetch(addr: number, max: number): { bytes: Uint8Array; faultAt: number } {
    const out = new Uint8Array(max);
    let n = 0;
    let faultAt = -1;
    while (n < max) {
      let p: number;
      try {
        p = this.translateOrFault(addr + n, Kind.Exec);
      } catch (e) {
        if (n === 0) throw e;
        faultAt = addr + n;
        break;
      }
      const chunk = Math.min(max - n, PAGE - ((addr + n) % PAGE));
      out.set(this.bytes.subarray(p, p + chunk), n);
      n += chunk;
    }
    return { bytes: out.subarray(0, n), faultAt };
  }

  private ioValue(p: number): number {
    return -2 - p;
  }

  private splitRead(addr: number, n: number): number {
    this.probeRead(addr, n);
    let v = 0;
    for (let i = n - 1; i >= 0; i--) v = v * 256 + this.read8(addr + i);
    return v;
  }

  private splitWrite(addr: number, v: number, n: number): void {
    if (n > 1) this.probeWrite(addr, n);
    for (let i = 0; i < n; i++) {
      this.write8(addr + i, v & 0xff);
      v >>>= 8;
    }
  }
}

function errBits(k: Kind): number {
  return k === Kind.Write ? PF_W : k === Kind.Exec ? PF_I : 0;
}
