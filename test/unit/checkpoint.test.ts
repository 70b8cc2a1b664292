/**
 * Checkpoint files (src/switch/checkpoint.ts), no KVM needed: a real workload loaded into shared
 * memory and run a while on the atomic CPU, saved, restored into fresh memory, compared; every
 * kind of damaged file refused with its reason and the destination memory left untouched.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AtomicCPU } from '../../src/detailed/atomicCpu.js';
import { BASELINE_CPUID } from '../../src/detailed/cpuidTable.js';
import { encodeThreadContext } from '../../src/guest/contextCodec.js';
import { PM_FLAG_MASK, PM_IO } from '../../src/guest/pageTables.js';
import { allocatePhysicalMemory, PAGE_SIZE, type PhysicalMemory } from '../../src/guest/physmem.js';
import { Process, type RestoreOptions } from '../../src/guest/process.js';
import type { ThreadContext } from '../../src/guest/threadContext.js';
import { hwcapFromCpuid } from '../../src/kvm/cpuid.js';
import {
  CHECKPOINT_FORMAT_VERSION,
  CHECKPOINT_HEADER_SIZE,
  CheckpointError,
  encodeCheckpoint,
  frameCheckpointPayload,
  loadCheckpoint,
  loadCheckpointAsync,
  saveCheckpoint,
  saveCheckpointAsync,
  type SaveOptions,
  unpackCheckpointPayload,
  verifyCheckpoint,
} from '../../src/switch/checkpoint.js';
import { workloadPath } from '../support/workloads.js';

const MEM = 64 << 20;
const ZERO = Buffer.alloc(MEM);
let dir: string;
const opened: Process[] = [];

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchsim-ckpt-'));
});
afterAll(() => {
  for (const p of opened.splice(0)) p.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

interface Guest {
  phys: PhysicalMemory;
  process: Process;
  cpu: AtomicCPU;
  stdout: number[];
}

const silentIo = (stdout: number[]) => ({
  write: (_fd: 1 | 2, b: Uint8Array) => void stdout.push(...b),
  read: () => new Uint8Array(0),
});

function restoreOpts(stdout: number[] = []): RestoreOptions {
  return { allowRead: [path.dirname(workloadPath('ptrchase'))], io: silentIo(stdout), warn: () => {} };
}

/** ptrchase loaded into fresh 64 MiB shared memory and run `insts` instructions on the atomic CPU. */
function ptrchase(ws: string, steps: string, insts: number): Guest {
  const exe = workloadPath('ptrchase');
  const phys = allocatePhysicalMemory(MEM, 'shared');
  const stdout: number[] = [];
  const { process, context } = Process.load(phys, fs.readFileSync(exe), {
    exePath: exe,
    argv: ['ptrchase', ws, steps],
    envp: ['LANG=C'],
    allowRead: [path.dirname(exe)],
    seed: 7n,
    hwcap: hwcapFromCpuid(BASELINE_CPUID),
    hwcap2: 0,
    io: silentIo(stdout),
    warn: () => {},
  });
  opened.push(process);
  const cpu = atomicOn(process, context);
  runFor(cpu, insts);
  return { phys, process, cpu, stdout };
}

function atomicOn(process: Process, tc: ThreadContext): AtomicCPU {
  const cpu = new AtomicCPU({ aspace: process.aspace, process, cpuid: BASELINE_CPUID, warn: () => {} });
  cpu.setThreadContext(tc);
  return cpu;
}

function runFor(cpu: AtomicCPU, insts: number): void {
  const target = cpu.instructions + insts;
  while (cpu.instructions < target) {
    const out = cpu.run(target - cpu.instructions);
    if (out.kind === 'exited' || out.kind === 'faulted') throw new Error(`guest ended early: ${JSON.stringify(out)}`);
  }
}

/** Every mapped RAM page by virtual address: [vaddr, bytes through the address space's translation]. */
function mappedMemory(p: Process): [number, Uint8Array][] {
  const out: [number, Uint8Array][] = [];
  p.aspace.pageTables.forEachUserPage((va, e) => {
    if (e & PM_IO) return;
    const pa = e - (e & PM_FLAG_MASK);
    out.push([va, p.aspace.phys.bytes.subarray(pa, pa + PAGE_SIZE)]);
  });
  return out;
}

/** sha256 of the registers and every mapped page (virtual address + contents). */
function stateHash(tc: ThreadContext, p: Process): string {
  const h = createHash('sha256').update(encodeThreadContext(tc));
  for (const [va, bytes] of mappedMemory(p)) h.update(`${va}:`).update(bytes);
  return h.digest('hex');
}

/** Every refusal checked by expectRefused, replayed through loadCheckpointAsync at the end. */
const refusals: { file: string; reason: string; message: RegExp; field: string | undefined; bytes: Buffer | null }[] = [];

function expectRefused(file: string, reason: string, message: RegExp, field?: string): void {
  refusals.push({ file, reason, message, field, bytes: fs.existsSync(file) ? fs.readFileSync(file) : null });
  const phys = allocatePhysicalMemory(MEM, 'shared');
  let err: unknown;
  try {
    loadCheckpoint(file, phys, restoreOpts());
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(CheckpointError);
  const ce = err as CheckpointError;
  expect(ce.reason).toBe(reason);
  expect(ce.message).toMatch(message);
  expect(ce.userFault).toBe(true);
  if (field !== undefined) expect(ce.field).toBe(field);
  expect(Buffer.from(phys.bytes.buffer, 0, MEM).equals(ZERO)).toBe(true);
}

describe('checkpoint round trip', () => {
  let g: Guest;
  let file: string;
  let savedTc: ThreadContext;
  beforeAll(() => {
    g = ptrchase('1M', '100000000', 3_000_000);
    savedTc = g.cpu.getThreadContext();
    file = path.join(dir, 'small.ckpt');
    saveCheckpoint(file, {
      threadContext: savedTc,
      process: g.process,
      config: { program: 'ptrchase', memSize: MEM, args: ['1M'] },
      stats: { instructions: g.cpu.instructions, big: 1n << 60n },
      cpu: 'atomic',
    });
  });

  it('restores identical registers, process state, memory, config, stats and cpu', () => {
    const phys = allocatePhysicalMemory(MEM, 'shared');
    const r = loadCheckpoint(file, phys, restoreOpts());
    opened.push(r.process);
    expect(r.threadContext).toEqual(savedTc);
    expect(r.process.snapshot()).toEqual(g.process.snapshot());
    expect(r.cpu).toBe('atomic');
    expect(r.config).toEqual({ program: 'ptrchase', memSize: MEM, args: ['1M'] });
    expect(r.stats).toEqual({ instructions: g.cpu.instructions, big: 1n << 60n });
    const a = mappedMemory(g.process);
    const b = mappedMemory(r.process);
    expect(b.map(([va]) => va)).toEqual(a.map(([va]) => va));
    let differing = 0;
    a.forEach(([va, bytes], i) => {
      expect(r.process.aspace.translate(va, 'read') & ~(PAGE_SIZE - 1)).toBeGreaterThan(0);
      if (!Buffer.from(bytes).equals(b[i]![1])) differing++;
    });
    expect(differing).toBe(0);
    expect(r.info.pages).toBeGreaterThan(256); // the 1 MiB array at least
    expect(r.info.pages).toBeLessThan(r.info.mappedPages); // zero pages (most of the stack) not stored
  });

  it('restore-then-run-N twice gives identical state hashes (and matches the uninterrupted run)', () => {
    const hashes: string[] = [];
    for (let k = 0; k < 2; k++) {
      const phys = allocatePhysicalMemory(MEM, 'shared');
      const r = loadCheckpoint(file, phys, restoreOpts());
      opened.push(r.process);
      const cpu = atomicOn(r.process, r.threadContext);
      runFor(cpu, 500_000);
      hashes.push(stateHash(cpu.getThreadContext(), r.process));
    }
    expect(hashes[1]).toBe(hashes[0]);
    runFor(g.cpu, 500_000);
    expect(stateHash(g.cpu.getThreadContext(), g.process)).toBe(hashes[0]);
  });

  describe('damaged files are refused and touch nothing', () => {
    let good: Buffer;
    const write = (name: string, bytes: Uint8Array) => {
      const f = path.join(dir, name);
      fs.writeFileSync(f, bytes);
      return f;
    };
    beforeAll(() => {
      good = fs.readFileSync(file);
    });

    it('truncated: empty, inside the header, inside the payload, checksum missing or cut', () => {
      expectRefused(write('t0', good.subarray(0, 0)), 'truncated', /truncated/);
      expectRefused(write('t5', good.subarray(0, 5)), 'truncated', /header/);
      expectRefused(write('t12', good.subarray(0, 12)), 'truncated', /header/);
      expectRefused(write('tp', good.subarray(0, CHECKPOINT_HEADER_SIZE + 100)), 'truncated', /payload is cut short/);
      expectRefused(write('tmid', good.subarray(0, good.length >> 1)), 'truncated', /payload is cut short/);
      expectRefused(write('tsum', good.subarray(0, good.length - 32)), 'truncated', /checksum is missing/);
      expectRefused(write('tsum1', good.subarray(0, good.length - 1)), 'truncated', /checksum is missing/);
    });

    it('trailing garbage after the checksum', () => {
      expectRefused(write('trail', Buffer.concat([good, Buffer.from([0])])), 'trailing', /after the checksum/);
    });

    it('wrong magic', () => {
      const b = Buffer.from(good);
      b.write('ELF\x7f', 0, 'latin1');
      expectRefused(write('magic', b), 'magic', /not a switchsim checkpoint/);
      expectRefused(write('magic2', Buffer.from('hello world, this is not a checkpoint at all')), 'magic', /not a switchsim checkpoint/);
    });

    it('newer format version', () => {
      const b = Buffer.from(good);
      b.writeUInt32LE(CHECKPOINT_FORMAT_VERSION + 1, 8);
      expectRefused(
        write('newer', b),
        'version',
        new RegExp(`written by a newer switchsim \\(format ${CHECKPOINT_FORMAT_VERSION + 1} > ${CHECKPOINT_FORMAT_VERSION}\\)`),
      );
    });

    it('a flipped byte in the payload or the checksum is a checksum error', () => {
      for (const at of [CHECKPOINT_HEADER_SIZE, CHECKPOINT_HEADER_SIZE + 1000, good.length - 40, good.length - 1]) {
        const b = Buffer.from(good);
        b[at] = b[at]! ^ 0x10;
        expectRefused(write(`flip${at}`, b), 'checksum', /sha256 checksum mismatch/);
      }
    });

    it('a valid checksum over a payload with a bad field names the field', () => {
      const cases: [string, (p: Record<string, any>) => void, string][] = [
        ['pid', (p) => (p.process.identity.pid = -1), 'process.identity.pid'],
        ['vma', (p) => (p.process.addressSpace.vmas[0].end = 1), 'process.addressSpace.vmas[0].end'],
        ['tc', (p) => (p.threadContext = Uint8Array.from([0x80])), 'threadContext.version'],
        ['tcblob', (p) => (p.threadContext = Uint8Array.from([0x01])), 'threadContext.(root)'],
        ['cpu', (p) => (p.cpu = 7), 'cpu'],
        ['stats', (p) => (p.stats = 'no'), 'stats'],
        ['v', (p) => (p.v = 99), 'v'],
        ['codec', (p) => (p.memory.batches[0].codec = 'zstd'), 'memory.batches[0].codec'],
        ['page', (p) => (p.memory.batches[0].pages = Uint8Array.from([1, 0, 0, 0])), 'memory.batches[0].pages[0]'],
        ['data', (p) => (p.memory.batches[0].data = p.memory.batches[0].data.subarray(0, 50)), 'memory.batches[0].data'],
        ['batches', (p) => (p.memory.batches = {}), 'memory.batches'],
      ];
      for (const [name, damage, field] of cases) {
        const payload = unpackCheckpointPayload(good) as Record<string, any>;
        damage(payload);
        expectRefused(write(`field-${name}`, frameCheckpointPayload(payload)), 'format', /bad checkpoint field/, field);
      }
      const notMsgpack = Buffer.from(frameCheckpointPayload(0));
      expectRefused(write('field-root', notMsgpack), 'format', /not an object/, '(payload)');
    });

    it('a checkpoint of another memory size is refused before anything is written', () => {
      const payload = unpackCheckpointPayload(good) as Record<string, any>;
      payload.process.addressSpace.memSize = 128 << 20;
      expectRefused(write('memsize', frameCheckpointPayload(payload)), 'memory', /--mem-size 134217728/, 'process.addressSpace.memSize');
    });

    it('a process that cannot be restored leaves memory as it was', () => {
      const payload = unpackCheckpointPayload(good) as Record<string, any>;
      payload.process.fds.files.push({ ...payload.process.fds.files[0], id: 999, kind: 'file', path: '/etc/hostname' });
      const f = write('fd', frameCheckpointPayload(payload));
      const phys = allocatePhysicalMemory(MEM, 'shared');
      expect(() => loadCheckpoint(f, phys, restoreOpts())).toThrow(/not under an allowed directory/);
      expect(Buffer.from(phys.bytes.buffer, 0, MEM).equals(ZERO)).toBe(true);
    });

    it('the async loader refuses the same damage and touches nothing', async () => {
      const b = Buffer.from(good);
      b[CHECKPOINT_HEADER_SIZE + 10] = b[CHECKPOINT_HEADER_SIZE + 10]! ^ 1;
      const payload = unpackCheckpointPayload(good) as Record<string, any>;
      const d = payload.memory.batches[0].data as Uint8Array;
      payload.memory.batches[0].data = Uint8Array.from(d, (x, i) => (i > 4 ? x ^ 0x5a : x));
      for (const [f, reason] of [
        [write('async-flip', b), 'checksum'],
        [write('async-data', frameCheckpointPayload(payload)), 'format'],
      ] as const) {
        const phys = allocatePhysicalMemory(MEM, 'shared');
        const err = await loadCheckpointAsync(f, phys, restoreOpts()).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(CheckpointError);
        expect((err as CheckpointError).reason).toBe(reason);
        expect(Buffer.from(phys.bytes.buffer, 0, MEM).equals(ZERO)).toBe(true);
      }
      const phys = allocatePhysicalMemory(MEM, 'shared');
      expect(() => loadCheckpoint(path.join(dir, 'async-data'), phys, restoreOpts())).toThrow(/memory\.batches\[0\]\.data/);
    });

    it('saveCheckpointAsync writes byte-for-byte the file saveCheckpoint writes', async () => {
      const contents = { threadContext: g.cpu.getThreadContext(), process: g.process, config: { a: 1 }, stats: {}, cpu: 'atomic' };
      for (const compression of ['brotli', 'deflate', 'none'] as const) {
        const fs1 = path.join(dir, `sync-${compression}.ckpt`);
        const fs2 = path.join(dir, `async-${compression}.ckpt`);
        saveCheckpoint(fs1, contents, { compression });
        await saveCheckpointAsync(fs2, contents, { compression });
        expect(fs.readFileSync(fs2).equals(fs.readFileSync(fs1))).toBe(true);
      }
    });

    it('a missing file is an io error', () => {
      expectRefused(path.join(dir, 'nope.ckpt'), 'io', /cannot read checkpoint/);
    });

    it('a bad stats list entry names it', () => {
      const payload = unpackCheckpointPayload(good) as Record<string, any>;
      payload.stats = [{ name: 'ok', value: 1 }, { value: 2 }];
      expectRefused(write('stats-list', frameCheckpointPayload(payload)), 'format', /bad checkpoint field stats\[1\]\.name/, 'stats[1].name');
      payload.stats = [{ name: 'x', value: {} }];
      expectRefused(write('stats-value', frameCheckpointPayload(payload)), 'format', /not a number or string/, 'stats[0].value');
    });

    it('the async (parallel) loader gives every damage case above the same error and touches nothing', async () => {
      expect(refusals.length).toBeGreaterThan(25);
      for (const r of refusals) {
        // the files are rewritten by later cases under the same name: replay the exact bytes
        const f = path.join(dir, 'replay.ckpt');
        if (r.bytes === null) fs.rmSync(f, { force: true });
        else fs.writeFileSync(f, r.bytes);
        const phys = allocatePhysicalMemory(MEM, 'shared');
        const err = await loadCheckpointAsync(f, phys, restoreOpts()).catch((e: unknown) => e);
        expect(err, r.file).toBeInstanceOf(CheckpointError);
        const ce = err as CheckpointError;
        expect(ce.reason, r.file).toBe(r.reason);
        expect(ce.message, r.file).toMatch(r.message);
        if (r.field !== undefined) expect(ce.field, r.file).toBe(r.field);
        expect(Buffer.from(phys.bytes.buffer, 0, MEM).equals(ZERO), r.file).toBe(true);
      }
    });
  });
});

describe('checkpoint page classes, codecs and the parallel path', () => {
  let g: Guest;
  let heap: number;
  const HEAP_PAGES = 600;
  /** Physical memory of a restore, whole (zero pages included). */
  const image = (phys: PhysicalMemory) => Buffer.from(phys.bytes.buffer, phys.bytes.byteOffset, MEM);

  beforeAll(() => {
    g = ptrchase('1M', '1000', 200_000);
    // a heap of random (incompressible), sparse (mostly zero), text and zero pages, in turn
    heap = g.process.aspace.mapAnywhere(HEAP_PAGES * PAGE_SIZE, 3, 'mmap', '[test heap]');
    let x = 12345;
    const next = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0), x >>> 8);
    for (let i = 0; i < HEAP_PAGES; i++) {
      const page = new Uint8Array(PAGE_SIZE);
      switch (i % 4) {
        case 0:
          for (let j = 0; j < PAGE_SIZE; j++) page[j] = next() & 0xff;
          break;
        case 1:
          for (let j = 0; j < 20; j++) page[next() % PAGE_SIZE] = 1 + (next() % 255);
          break;
        case 2:
          page.set(Buffer.from('checkpoint text page, words and more words; '.repeat(100)).subarray(0, PAGE_SIZE));
          break;
        default:
          break;
      }
      g.process.aspace.write(heap + i * PAGE_SIZE, page);
    }
  });

  const contents = () => ({
    threadContext: g.cpu.getThreadContext(),
    process: g.process,
    config: { program: 'ptrchase', nested: { list: [1, 'two', null], big: 1n << 40n } },
    stats: [
      { name: 'simInsts', value: 200_000, desc: 'instructions simulated' },
      { name: 'hostSeconds', value: 0.25, desc: 'host time', unit: 's' },
      { name: 'big', value: 1n << 62n },
      { name: 'label', value: 'x' },
    ],
    cpu: 'atomic',
  });

  it('high-entropy pages are stored raw, zero pages not at all; config and a stats list round-trip', () => {
    const f = path.join(dir, 'classes.ckpt');
    const info = saveCheckpoint(f, contents());
    expect(info.rawPages).toBeGreaterThanOrEqual(HEAP_PAGES / 4);
    expect(info.rawPages).toBeLessThan(HEAP_PAGES / 4 + 20);
    const phys = allocatePhysicalMemory(MEM, 'shared');
    const r = loadCheckpoint(f, phys, restoreOpts());
    opened.push(r.process);
    expect(r.config).toEqual(contents().config);
    expect(r.stats).toEqual(contents().stats);
    expect(image(phys).equals(image(g.phys))).toBe(true);
    const codecs = (unpackCheckpointPayload(fs.readFileSync(f)).memory as any).batches.map((b: any) => b.codec);
    expect(codecs).toContain('raw');
    expect(codecs).toContain('deflate-raw');
  });

  it('config and stats may be omitted (saved as {} and [])', () => {
    const f = path.join(dir, 'bare.ckpt');
    saveCheckpoint(f, { threadContext: g.cpu.getThreadContext(), process: g.process, cpu: 'atomic' });
    const r = loadCheckpoint(f, allocatePhysicalMemory(MEM, 'shared'), restoreOpts());
    opened.push(r.process);
    expect(r.config).toEqual({});
    expect(r.stats).toEqual([]);
  });

  it('every codec, level and strategy: sync and async files are byte-identical, and sync and async restores give byte-identical memory', async () => {
    const variants: SaveOptions[] = [
      {},
      { compression: 'deflate', level: 6 },
      { compression: 'deflate', strategy: 'rle' },
      { compression: 'deflate', strategy: 'huffman' },
      { compression: 'deflate', strategy: 'filtered', level: 3 },
      { compression: 'deflate', entropyCheck: false },
      { compression: 'brotli' },
      { compression: 'brotli', level: 1, entropyCheck: false },
      { compression: 'none' },
    ];
    for (const opts of variants) {
      const what = JSON.stringify(opts);
      const f1 = path.join(dir, 'v-sync.ckpt');
      const f2 = path.join(dir, 'v-async.ckpt');
      const i1 = saveCheckpoint(f1, contents(), opts);
      const i2 = await saveCheckpointAsync(f2, contents(), opts);
      expect(i2, what).toEqual(i1);
      const bytes = fs.readFileSync(f1);
      expect(fs.readFileSync(f2).equals(bytes), what).toBe(true);
      const enc = encodeCheckpoint(contents(), opts);
      expect(Buffer.from(enc.data).equals(bytes), what).toBe(true);
      expect(enc.info.fileBytes, what).toBe(bytes.length);
      const p1 = allocatePhysicalMemory(MEM, 'shared');
      const p2 = allocatePhysicalMemory(MEM, 'shared');
      const r1 = loadCheckpoint(f1, p1, restoreOpts());
      const r2 = await loadCheckpointAsync(f2, p2, restoreOpts());
      opened.push(r1.process, r2.process);
      expect(image(p2).equals(image(p1)), what).toBe(true);
      expect(image(p1).equals(image(g.phys)), what).toBe(true);
      expect(r2.process.snapshot(), what).toEqual(r1.process.snapshot());
      expect(r2.threadContext, what).toEqual(r1.threadContext);
      expect(r2.info, what).toEqual(r1.info);
      expect(() => verifyCheckpoint(f1, bytes, MEM)).not.toThrow();
    }
  });

  it('a checkpoint written from a snapshot ({state, phys}) equals one from the live process', () => {
    const a = encodeCheckpoint(contents());
    const b = encodeCheckpoint({ ...contents(), process: { state: g.process.snapshot(), phys: g.phys } });
    expect(Buffer.from(b.data).equals(Buffer.from(a.data))).toBe(true);
  });

  it('the file is replaced atomically: no temp files are left behind', () => {
    const sub = fs.mkdtempSync(path.join(dir, 'atomic-'));
    const f = path.join(sub, 'a.ckpt');
    saveCheckpoint(f, contents(), { compression: 'none' });
    saveCheckpoint(f, contents());
    expect(fs.readdirSync(sub)).toEqual(['a.ckpt']);
    expect(fs.readFileSync(f).equals(Buffer.from(encodeCheckpoint(contents()).data))).toBe(true);
  });
});

describe('checkpoint throughput', () => {
  it('saves and restores tens of MB of touched memory (printed, not asserted)', async () => {
    const g = ptrchase('32M', '1000', 0);
    // Run until the array is initialised (its first loop writes every element).
    const t0 = performance.now();
    runFor(g.cpu, 30_000_000);
    const runMs = performance.now() - t0;
    const tc = g.cpu.getThreadContext();
    const file = path.join(dir, 'big.ckpt');
    const results: string[] = [];
    let touched = 0;
    const want = stateHash(tc, g.process);
    const modes = [
      ['brotli', false],
      ['deflate', false],
      ['none', false],
      ['brotli', true],
      ['deflate', true],
    ] as const;
    for (const [compression, parallel] of modes) {
      let best = { save: Infinity, restore: Infinity, fileBytes: 0 };
      for (let rep = 0; rep < 2; rep++) {
        const contents = { threadContext: tc, process: g.process, config: {}, stats: {}, cpu: 'atomic' };
        const s0 = performance.now();
        const info = parallel
          ? await saveCheckpointAsync(file, contents, { compression })
          : saveCheckpoint(file, contents, { compression });
        const saveMs = performance.now() - s0;
        const phys = allocatePhysicalMemory(MEM, 'shared');
        const r0 = performance.now();
        const r = parallel ? await loadCheckpointAsync(file, phys, restoreOpts()) : loadCheckpoint(file, phys, restoreOpts());
        const restoreMs = performance.now() - r0;
        opened.push(r.process);
        touched = info.touchedBytes;
        expect(r.info.touchedBytes).toBe(info.touchedBytes);
        expect(stateHash(r.threadContext, r.process)).toBe(want);
        best = { save: Math.min(best.save, saveMs), restore: Math.min(best.restore, restoreMs), fileBytes: info.fileBytes };
      }
      results.push(
        `${`${compression}${parallel ? ' (async, parallel)' : ''}`.padEnd(26)}: save ${(touched / 1e6 / (best.save / 1e3)).toFixed(0)} MB/s (${best.save.toFixed(1)} ms), ` +
          `restore ${(touched / 1e6 / (best.restore / 1e3)).toFixed(0)} MB/s (${best.restore.toFixed(1)} ms), ` +
          `file ${(best.fileBytes / 1e6).toFixed(1)} MB`,
      );
    }
    console.log(
      `checkpoint throughput (MB/s of touched memory, file write+fsync and read included, best of 2), ` +
        `ptrchase 32M after 30M instructions (${runMs.toFixed(0)} ms on atomic), ${(touched / 1e6).toFixed(1)} MB touched:\n  ${results.join('\n  ')}`,
    );
    expect(touched).toBeGreaterThan(32e6);
  }, 300_000);
});
