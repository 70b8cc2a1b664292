/**
 * The memory timestamp record (memoryTimestamps.ts): the functional core stamps every data access
 * by physical line, and a cache rebuilt from the record holds, set by set and in LRU order, the
 * lines a cache seeing every one of those accesses would hold.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AtomicCPU } from '../../src/detailed/atomicCpu.js';
import { MemoryTimestamps, type StampedLines } from '../../src/detailed/memoryTimestamps.js';
import { Cache } from '../../src/detailed/o3/mem/cache.js';
import { MemSystem } from '../../src/detailed/o3/mem/hierarchy.js';
import { Dram } from '../../src/detailed/o3/mem/dram.js';
import { tracingMemory, type TracingMemory } from '../../src/detailed/o3/tracingMemory.js';
import { allocatePhysicalMemory } from '../../src/guest/physmem.js';
import { Process } from '../../src/guest/process.js';
import { workloadPath } from '../support/workloads.js';

function stamped(lines: [vline: number, stamp: number, written: 0 | 1][]): StampedLines {
  const n = lines.length;
  const out: StampedLines = { count: n, vline: new Float64Array(n), stamp: new Float64Array(n), written: new Uint8Array(n), pline: new Float64Array(n) };
  lines.forEach(([v, s, w], i) => {
    out.vline[i] = v;
    out.stamp[i] = s;
    out.written[i] = w;
    out.pline[i] = i;
  });
  return out;
}

describe('Cache.rebuild', () => {
  it('keeps the most recent lines of each set in LRU order, dirty where written, and says which it kept', () => {
    // 2 sets × 2 ways of 64-byte lines: even lines in set 0, odd in set 1.
    const c = new Cache('t', { size: 256, assoc: 2, lineSize: 64 }, new Dram('dram'));
    c.warm(64 * 100, false); // whatever was there goes
    const lines = stamped([
      [0, 5, 0], [2, 9, 1], [4, 7, 0], [6, 1, 0], // set 0: 2 (9) and 4 (7) are the newest
      [1, 3, 0], [3, 2, 1], // set 1: both fit
    ]);
    const kept = new Uint8Array(lines.count);
    c.rebuild(lines, kept);
    expect(c.residentLines()).toEqual([[4, 2], [3, 1]]);
    expect([...kept]).toEqual([0, 1, 1, 0, 1, 1]);
    expect(c.isDirty(2 * 64)).toBe(true);
    expect(c.isDirty(4 * 64)).toBe(false);
    expect(c.isDirty(3 * 64)).toBe(true);
    // The rebuilt order is the LRU order: a new line in set 0 evicts line 4, the older of the two.
    c.warm(8 * 64, false);
    expect(c.residentLines()[0]).toEqual([2, 8]);
  });

  it('merges record lines sharing one longer cache line (newest stamp, dirty if either was written)', () => {
    const c = new Cache('t', { size: 512, assoc: 2, lineSize: 128 }, new Dram('dram'));
    const kept = new Uint8Array(3);
    c.rebuild(stamped([[0, 4, 1], [1, 6, 0], [2, 5, 0]]), kept); // 64-byte lines 0 and 1 are 128-byte line 0
    expect(c.residentLines()[0]).toEqual([0]);
    expect(c.residentLines()[1]).toEqual([1]);
    expect(c.isDirty(0)).toBe(true);
    expect([...kept]).toEqual([1, 1, 1]);
  });
});

describe('MemoryTimestamps', () => {
  it('an L1D rebuilt from the record of a run equals the L1D warmed by every access of that run', () => {
    const exe = workloadPath('qsort');
    const phys = allocatePhysicalMemory(64 << 20, 'shared');
    const { process: p, context } = Process.load(phys, readFileSync(exe), {
      exePath: exe, argv: [exe, '20000'], envp: [], allowRead: [], seed: 0n, hwcap: 0, hwcap2: 0, io: { write: () => {}, read: () => new Uint8Array(0) },
    });
    let tm: TracingMemory | undefined;
    const cpu = new AtomicCPU({ aspace: p.aspace, process: p, memory: (a) => (tm = tracingMemory(a)) });
    cpu.setThreadContext(context);
    const rec = new MemoryTimestamps();
    tm!.recordTimestamps(rec);
    // The reference: every data access of the run, in order, through an L1D (its own next level).
    const reference = new Cache('ref', { size: 32 * 1024, assoc: 8, lineSize: 64 }, new Dram('dram'));
    let accesses = 0;
    cpu.blockHook = () => {
      const t = tm!;
      for (let i = 0; i < t.count; i++) {
        reference.warm(t.addrs[i]!, t.writes[i] === 1);
        accesses++;
      }
      t.count = 0;
    };
    const out = cpu.run(3_000_000);
    expect(out.kind).toBe('limit');
    expect(accesses).toBeGreaterThan(500_000);
    expect(rec.clock).toBe(accesses);
    const mem = new MemSystem({ l1d: { size: 32 * 1024, assoc: 8, lineSize: 64 } });
    const offered = mem.rebuildFrom(rec);
    expect(offered).toBeGreaterThan(512);
    expect(mem.l1d.residentLines()).toEqual(reference.residentLines());
  });
});
