/**
 * Guest memory that also records the data accesses of the instruction being executed, so the
 * detailed CPU's µops carry real addresses. Only the detailed CPU uses it: the atomic CPU keeps
 * the plain, faster GuestMemory.
 */
import { GuestMemory } from '../memory.js';

export class TracingMemory extends GuestMemory {
  /** Accesses of the current instruction (the first `count`): address, size, 1 for a write. */
  addrs = new Float64Array(64);
  sizes = new Int32Array(64);
  writes = new Uint8Array(64);
  count = 0;

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

  override read8(addr: number): number {
    this.note(addr, 1, 0);
    return super.read8(addr);
  }
  override read16(addr: number): number {
    this.note(addr, 2, 0);
    return super.read16(addr);
  }
  override read32(addr: number): number {
    this.note(addr, 4, 0);
    return super.read32(addr);
  }
  override read64(addr: number): number {
    this.note(addr, 8, 0);
    return super.read64(addr);
  }
  override rmw8(addr: number): number {
    this.note(addr, 1, 0);
    return super.rmw8(addr);
  }
  override rmw16(addr: number): number {
    this.note(addr, 2, 0);
    return super.rmw16(addr);
  }
  override rmw32(addr: number): number {
    this.note(addr, 4, 0);
    return super.rmw32(addr);
  }
  override rmw64(addr: number): number {
    this.note(addr, 8, 0);
    return super.rmw64(addr);
  }
  override write8(addr: number, v: number): void {
    this.note(addr, 1, 1);
    super.write8(addr, v);
  }
  override write16(addr: number, v: number): void {
    this.note(addr, 2, 1);
    super.write16(addr, v);
  }
  override write32(addr: number, v: number): void {
    this.note(addr, 4, 1);
    super.write32(addr, v);
  }
  override write64(addr: number, lo: number, hi: number): void {
    this.note(addr, 8, 1);
    super.write64(addr, lo, hi);
  }
  override readBytes(addr: number, out: Uint8Array, n: number): void {
    this.note(addr, n, 0);
    super.readBytes(addr, out, n);
  }
  override writeBytes(addr: number, src: Uint8Array, n: number): void {
    this.note(addr, n, 1);
    super.writeBytes(addr, src, n);
  }
}
