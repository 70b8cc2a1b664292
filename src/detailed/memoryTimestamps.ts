/**
 * A memory timestamp record (after Barr, Pan and Asanović's MTR, 2005): for every 64-byte
 * physical line, when it was last accessed (a count of data accesses) and whether it was written
 * since it last left the caches. The functional core keeps it at one store per access
 * (GuestMemory.stamps), so a fast-forward of any length leaves behind what a cache seeing all of
 * it would hold: Cache.rebuild takes, per set, the most recently accessed lines. Sampling then
 * needs no long functional warming for the large caches, and the warming's length no longer
 * depends on where a sample falls.
 *
 * Pages are noted when a GuestMemory fills its TLB (noteFill): that is where the array grows and
 * where the virtual page a physical page serves is learnt (the caches are virtually addressed).
 * A rebuild collects the lines of the pages touched since the last one plus the lines the caches
 * held then: no other line can have become more recent.
 */
const LINES_PER_PAGE = 64;
const PAGE = 4096;

/** What a TLB flush needs (every memory stamping into the record flushes at a rebuild). */
interface Flushable {
  flushTlb(): void;
}

/** Lines for a rebuild: virtual line numbers with their last access and whether they are dirty. */
export interface StampedLines {
  count: number;
  vline: Float64Array;
  stamp: Float64Array;
  written: Uint8Array;
  /** The physical line of each (for MemoryTimestamps.settle). */
  pline: Float64Array;
}

/** A record's changes since its previous delta (MemoryTimestamps.takeDelta). */
export interface RecordDelta {
  clock: number;
  /** Physical page numbers touched, with the virtual page each was last mapped at. */
  pages: Float64Array;
  vpns: Float64Array;
  /** 64 per page: the lines' stamps and written bits. */
  stamps: Float64Array;
  written: Uint8Array;
  /** The pages written to (by the CPU: syscalls' writes are not seen). */
  dirty: number[];
}

export class MemoryTimestamps {
  /** Per physical line: the access count at its last access (0: never). Grown by noteFill. */
  stamp = new Float64Array(0);
  /** Per physical line: written since it last left the caches (cleared by settle). */
  written = new Uint8Array(0);
  /** Data accesses so far (the clock of `stamp`). */
  clock = 0;
  /** Per physical page: the virtual page it was last mapped at (-1: not seen). */
  private vpnOf = new Float64Array(0);
  /** Per physical page: touched since the last collect. */
  private touched = new Uint8Array(0);
  private touchedList: number[] = [];
  /** Physical lines some cache held after the last rebuild. */
  private resident: number[] = [];
  private readonly memories: Flushable[] = [];

  /** A memory that stamps into this record: flushed at every collect so its pages are noted again. */
  attach(m: Flushable): void {
    this.memories.push(m);
    m.flushTlb();
  }

  /** A TLB fill of physical page base `physPage` for virtual page `vpn` (before any access through it). */
  noteFill(physPage: number, vpn: number): void {
    const ppn = physPage / PAGE;
    if (ppn >= this.vpnOf.length) this.grow(ppn + 1);
    this.vpnOf[ppn] = vpn;
    if (this.touched[ppn] === 0) {
      this.touched[ppn] = 1;
      this.touchedList.push(ppn);
    }
  }

  private grow(pages: number): void {
    const n = Math.max(pages, this.vpnOf.length * 2, 256);
    const vpnOf = new Float64Array(n).fill(-1);
    vpnOf.set(this.vpnOf);
    const touched = new Uint8Array(n);
    touched.set(this.touched);
    const stamp = new Float64Array(n * LINES_PER_PAGE);
    stamp.set(this.stamp);
    const written = new Uint8Array(n * LINES_PER_PAGE);
    written.set(this.written);
    this.vpnOf = vpnOf;
    this.touched = touched;
    this.stamp = stamp;
    this.written = written;
  }

  /**
   * The lines that may now be in a cache: every accessed line of the pages touched since the
   * last collect, and the lines resident then. Flushes the attached memories' TLBs, so the pages
   * they touch from here on are noted again.
   */
  collect(): StampedLines {
    for (const m of this.memories) m.flushTlb();
    const max = this.touchedList.length * LINES_PER_PAGE + this.resident.length;
    const out: StampedLines = { count: 0, vline: new Float64Array(max), stamp: new Float64Array(max), written: new Uint8Array(max), pline: new Float64Array(max) };
    const take = (l: number, vpn: number): void => {
      const i = out.count++;
      out.vline[i] = vpn * LINES_PER_PAGE + (l % LINES_PER_PAGE);
      out.stamp[i] = this.stamp[l]!;
      out.written[i] = this.written[l]!;
      out.pline[i] = l;
    };
    // Resident lines of untouched pages first (a touched page's lines all come below).
    for (const l of this.resident) {
      const ppn = Math.floor(l / LINES_PER_PAGE);
      const vpn = this.vpnOf[ppn]!;
      if (this.touched[ppn] === 0 && vpn >= 0) take(l, vpn);
    }
    for (const ppn of this.touchedList) {
      this.touched[ppn] = 0;
      const vpn = this.vpnOf[ppn]!;
      if (vpn < 0) continue;
      const first = ppn * LINES_PER_PAGE;
      for (let l = first; l < first + LINES_PER_PAGE; l++) if (this.stamp[l]! > 0) take(l, vpn);
    }
    this.touchedList = [];
    return out;
  }

  /**
   * What changed since the last delta, for a copy of this record kept elsewhere (a parallel
   * sampling worker: RecordDelta, applyDelta): the pages touched, their lines' stamps and written
   * bits, and which of them were written (their contents must be copied too). Clears the written
   * bits it hands over (the copy keeps them) and flushes the attached TLBs like collect.
   */
  takeDelta(): RecordDelta {
    for (const m of this.memories) m.flushTlb();
    const n = this.touchedList.length;
    const d: RecordDelta = {
      clock: this.clock,
      pages: new Float64Array(n),
      vpns: new Float64Array(n),
      stamps: new Float64Array(n * LINES_PER_PAGE),
      written: new Uint8Array(n * LINES_PER_PAGE),
      dirty: [],
    };
    for (let i = 0; i < n; i++) {
      const ppn = this.touchedList[i]!;
      this.touched[ppn] = 0;
      d.pages[i] = ppn;
      d.vpns[i] = this.vpnOf[ppn]!;
      const first = ppn * LINES_PER_PAGE;
      d.stamps.set(this.stamp.subarray(first, first + LINES_PER_PAGE), i * LINES_PER_PAGE);
      let dirty = false;
      for (let l = 0; l < LINES_PER_PAGE; l++) {
        if (this.written[first + l] === 1) {
          d.written[i * LINES_PER_PAGE + l] = 1;
          this.written[first + l] = 0;
          dirty = true;
        }
      }
      if (dirty) d.dirty.push(ppn);
    }
    this.touchedList = [];
    return d;
  }

  /** Takes over another record's delta (takeDelta): its clock, and its pages as touched here. */
  applyDelta(d: RecordDelta): void {
    this.clock = d.clock;
    for (let i = 0; i < d.pages.length; i++) {
      const ppn = d.pages[i]!;
      if (ppn >= this.vpnOf.length) this.grow(ppn + 1);
      this.vpnOf[ppn] = d.vpns[i]!;
      if (this.touched[ppn] === 0) {
        this.touched[ppn] = 1;
        this.touchedList.push(ppn);
      }
      const first = ppn * LINES_PER_PAGE;
      this.stamp.set(d.stamps.subarray(i * LINES_PER_PAGE, (i + 1) * LINES_PER_PAGE), first);
      for (let l = 0; l < LINES_PER_PAGE; l++) if (d.written[i * LINES_PER_PAGE + l] === 1) this.written[first + l] = 1;
    }
  }

  /**
   * After a rebuild: `kept[i]` says whether some cache took line i of `lines`. The others left
   * the hierarchy, written back if dirty, so they are clean from here on.
   */
  settle(lines: StampedLines, kept: Uint8Array): void {
    this.resident = [];
    for (let i = 0; i < lines.count; i++) {
      const l = lines.pline[i]!;
      if (kept[i] === 1) this.resident.push(l);
      else this.written[l] = 0;
    }
  }
}
