/**
 * `npm run bench:checkpoint`: checkpoint save/restore throughput (src/switch/checkpoint.ts).
 *
 * A real process (ptrchase, loaded, not run) in 1 GiB of SharedArrayBuffer guest memory, plus
 * an anonymous mapping of 64 MiB and 256 MiB filled like a program heap. Page mix (by page,
 * deterministic PRNG): 35% sparse (a few dozen non-zero words in an otherwise zero page, like
 * partly used heap chunks, bss, stacks), 25% text-like (words from a small vocabulary),
 * 25% pointer-rich structures (64-bit pointers into one region, small ints, zero padding),
 * 15% random bytes (hashes, compressed or encrypted data). Every page is non-zero, so
 * "touched" = the mapping (+ the process's own few non-zero pages).
 *
 * For each codec/level/strategy, sync and async: save (file written, fsynced, renamed) and
 * restore (read, sha256, decompress, install, Process.restore) into fresh 1 GiB memory, best of
 * N, in MB/s of touched memory (10^6 bytes); the restored memory is checked byte for byte once
 * per mode. A benchmark.js micro-benchmark times encodeCheckpoint (no I/O) for the default.
 * Prints tables, writes bench/results/checkpoint.json.
 */
import Benchmark from 'benchmark';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BASELINE_CPUID } from '../src/detailed/cpuidTable.js';
import { PM_FLAG_MASK, PM_IO, PROT_READ, PROT_WRITE } from '../src/guest/pageTables.js';
import { allocatePhysicalMemory, PAGE_SIZE, type PhysicalMemory } from '../src/guest/physmem.js';
import { Process, type RestoreOptions } from '../src/guest/process.js';
import type { ThreadContext } from '../src/guest/threadContext.js';
import { hwcapFromCpuid } from '../src/kvm/cpuid.js';
import {
  encodeCheckpoint,
  loadCheckpoint,
  loadCheckpointAsync,
  saveCheckpoint,
  saveCheckpointAsync,
  type SaveOptions,
} from '../src/switch/checkpoint.js';
import { RESULTS_DIR, workloadPath } from './lib/env.js';
import { renderText, type Table } from './lib/table.js';
import { progress } from './lib/util.js';
import { writeFileAtomic } from '../src/util/atomicWrite.js';

const MEM = 1024 ** 3;
const SIZES_MIB = (process.env.CKPT_SIZES ?? '64,256').split(',').map(Number);
const MIX = { sparse: 0.35, text: 0.25, pointers: 0.25, random: 0.15 };

interface Mode {
  name: string;
  opts: SaveOptions;
}
const MODES: Mode[] = [
  { name: 'deflate-1 (default)', opts: {} },
  { name: 'deflate-1 rle', opts: { compression: 'deflate', level: 1, strategy: 'rle' } },
  { name: 'deflate-1 huffman', opts: { compression: 'deflate', level: 1, strategy: 'huffman' } },
  { name: 'deflate-6', opts: { compression: 'deflate', level: 6 } },
  { name: 'deflate-1, no entropy check', opts: { compression: 'deflate', level: 1, entropyCheck: false } },
  { name: 'brotli-0', opts: { compression: 'brotli', level: 0 } },
  { name: 'none', opts: { compression: 'none' } },
];

/** xorshift32: the same heap every run. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

const WORDS = 'the of and to in is that for it as was with be by on not he this are or his from at which but have an they you were her she there all would their we him been has when who will more no if out so said what up its about into than them can only other new some could time these two may then do first any my now such like our over man me even most made after also did many before must through back years where much your way well down should because each just those people'.split(
  ' ',
);

function fillPage(p: Uint8Array, kind: keyof typeof MIX, r: () => number, heapBase: number): void {
  const dv = new DataView(p.buffer, p.byteOffset, PAGE_SIZE);
  switch (kind) {
    case 'sparse': {
      const n = 8 + Math.floor(r() * 56);
      for (let i = 0; i < n; i++) dv.setUint32(Math.floor(r() * 1024) * 4, Math.floor(r() * 0xffffffff), true);
      break;
    }
    case 'text': {
      let at = 0;
      while (at < PAGE_SIZE) {
        const w = WORDS[Math.floor(r() * WORDS.length)]! + (r() < 0.08 ? '.\n' : ' ');
        for (let i = 0; i < w.length && at < PAGE_SIZE; i++) p[at++] = w.charCodeAt(i);
      }
      break;
    }
    case 'pointers': {
      // 48-byte records: next/prev pointers, a key, a small count, a flag, padding
      for (let at = 0; at + 48 <= PAGE_SIZE; at += 48) {
        dv.setBigUint64(at, BigInt(heapBase + Math.floor(r() * (1 << 24)) * 16), true);
        dv.setBigUint64(at + 8, BigInt(heapBase + Math.floor(r() * (1 << 24)) * 16), true);
        dv.setUint32(at + 16, Math.floor(r() * 0xffffffff), true);
        dv.setUint32(at + 24, Math.floor(r() * 100), true);
        p[at + 32] = r() < 0.5 ? 1 : 0;
      }
      break;
    }
    case 'random':
      for (let at = 0; at < PAGE_SIZE; at += 4) dv.setUint32(at, Math.floor(r() * 0x100000000), true);
      break;
  }
}

interface Guest {
  phys: PhysicalMemory;
  process: Process;
  tc: ThreadContext;
  hash: string;
}

const quietIo = { write: () => {}, read: () => new Uint8Array(0) };
const restoreOpts = (): RestoreOptions => ({ allowRead: [path.dirname(workloadPath('ptrchase'))], io: quietIo, warn: () => {} });

function buildGuest(mib: number): Guest {
  const exe = workloadPath('ptrchase');
  const phys = allocatePhysicalMemory(MEM, 'shared');
  const { process, context } = Process.load(phys, fs.readFileSync(exe), {
    exePath: exe,
    argv: ['ptrchase', '1M', '1000'],
    envp: ['LANG=C'],
    allowRead: [path.dirname(exe)],
    seed: 7n,
    hwcap: hwcapFromCpuid(BASELINE_CPUID),
    hwcap2: 0,
    io: quietIo,
    warn: () => {},
  });
  const len = mib * 1024 * 1024;
  const base = process.aspace.mapAnywhere(len, PROT_READ | PROT_WRITE, 'mmap', '[bench heap]');
  const r = rng(0x5eed + mib);
  const kinds = Object.entries(MIX) as [keyof typeof MIX, number][];
  for (let va = base; va < base + len; va += PAGE_SIZE) {
    const pa = process.aspace.userPhys(va, 'write');
    let x = r();
    let kind = kinds[kinds.length - 1]![0];
    for (const [k, share] of kinds) {
      if (x < share) {
        kind = k;
        break;
      }
      x -= share;
    }
    fillPage(phys.bytes.subarray(pa, pa + PAGE_SIZE), kind, r, base);
  }
  return { phys, process, tc: context, hash: memoryHash(process) };
}

/** sha256 over every mapped RAM page (virtual address + contents). */
function memoryHash(p: Process): string {
  const h = createHash('sha256');
  p.aspace.pageTables.forEachUserPage((va, e) => {
    if (e & PM_IO) return;
    const pa = e - (e & PM_FLAG_MASK);
    h.update(`${va}:`).update(p.aspace.phys.bytes.subarray(pa, pa + PAGE_SIZE));
  });
  return h.digest('hex');
}

interface Row {
  sizeMiB: number;
  mode: string;
  touchedMB: number;
  fileMB: number;
  ratio: number;
  rawPages: number;
  saveSyncMBs: number;
  saveAsyncMBs: number;
  restoreSyncMBs: number;
  restoreAsyncMBs: number;
  /** MB of touched memory per CPU-second (all threads), sync save / sync restore: robust to other load. */
  saveCpuMBs: number;
  restoreCpuMBs: number;
}

async function measure(g: Guest, sizeMiB: number, mode: Mode, reps: number, file: string): Promise<Row> {
  const contents = {
    threadContext: g.tc,
    process: g.process,
    config: { program: 'ptrchase', memSize: MEM },
    stats: [{ name: 'simInsts', value: 0, desc: 'instructions simulated' }],
    cpu: 'atomic',
  };
  const best = { saveSync: Infinity, saveAsync: Infinity, restoreSync: Infinity, restoreAsync: Infinity, saveCpu: Infinity, restoreCpu: Infinity };
  const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1e3;
  let touched = 0;
  let fileBytes = 0;
  let rawPages = 0;
  for (let rep = 0; rep < reps; rep++) {
    for (const parallel of [false, true]) {
      const s0 = performance.now();
      const sc = process.cpuUsage();
      const info = parallel ? await saveCheckpointAsync(file, contents, mode.opts) : saveCheckpoint(file, contents, mode.opts);
      const saveMs = performance.now() - s0;
      const saveCpu = cpuMs(process.cpuUsage(sc));
      touched = info.touchedBytes;
      fileBytes = info.fileBytes;
      rawPages = info.rawPages ?? 0;
      const phys = allocatePhysicalMemory(MEM, 'shared');
      const r0 = performance.now();
      const rc = process.cpuUsage();
      const r = parallel ? await loadCheckpointAsync(file, phys, restoreOpts()) : loadCheckpoint(file, phys, restoreOpts());
      const restoreMs = performance.now() - r0;
      const restoreCpu = cpuMs(process.cpuUsage(rc));
      if (rep === 0 && memoryHash(r.process) !== g.hash) throw new Error(`${mode.name}: restored memory differs`);
      r.process.close();
      if (parallel) {
        best.saveAsync = Math.min(best.saveAsync, saveMs);
        best.restoreAsync = Math.min(best.restoreAsync, restoreMs);
      } else {
        best.saveSync = Math.min(best.saveSync, saveMs);
        best.restoreSync = Math.min(best.restoreSync, restoreMs);
        best.saveCpu = Math.min(best.saveCpu, saveCpu);
        best.restoreCpu = Math.min(best.restoreCpu, restoreCpu);
      }
    }
  }
  const mbs = (ms: number) => touched / 1e6 / (ms / 1e3);
  return {
    sizeMiB,
    mode: mode.name,
    touchedMB: touched / 1e6,
    fileMB: fileBytes / 1e6,
    ratio: fileBytes / touched,
    rawPages,
    saveSyncMBs: mbs(best.saveSync),
    saveAsyncMBs: mbs(best.saveAsync),
    restoreSyncMBs: mbs(best.restoreSync),
    restoreAsyncMBs: mbs(best.restoreAsync),
    saveCpuMBs: mbs(best.saveCpu),
    restoreCpuMBs: mbs(best.restoreCpu),
  };
}

function microBench(g: Guest): { name: string; meanMs: number; rmePct: number; mbs: number }[] {
  const contents = { threadContext: g.tc, process: g.process, config: {}, stats: [], cpu: 'atomic' };
  const touched = encodeCheckpoint(contents, { compression: 'none' }).info.touchedBytes;
  const out: { name: string; meanMs: number; rmePct: number; mbs: number }[] = [];
  const suite = new Benchmark.Suite('checkpoint');
  suite
    .add('encodeCheckpoint default (deflate-1, entropy check)', () => void encodeCheckpoint(contents))
    .add("encodeCheckpoint 'none'", () => void encodeCheckpoint(contents, { compression: 'none' }))
    .on('cycle', (ev: Benchmark.Event) => {
      const b = ev.target as unknown as Benchmark;
      out.push({ name: String(b.name), meanMs: b.stats.mean * 1000, rmePct: b.stats.rme, mbs: touched / 1e6 / b.stats.mean });
    })
    .run({ async: false });
  return out;
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchsim-bench-ckpt-'));
  const rows: Row[] = [];
  let micro: ReturnType<typeof microBench> = [];
  try {
    for (const mib of SIZES_MIB) {
      progress(`[checkpoint] building a ${mib} MiB heap in 1 GiB of guest memory`);
      const g = buildGuest(mib);
      if (mib === SIZES_MIB[0] && process.env.CKPT_MICRO !== '0') {
        progress('[checkpoint] benchmark.js: encodeCheckpoint (no file I/O)');
        micro = microBench(g);
      }
      const only = process.env.CKPT_MODES?.split(',');
      for (const mode of MODES.filter((m) => only === undefined || only.some((o) => m.name.startsWith(o)))) {
        progress(`[checkpoint] ${mib} MiB, ${mode.name}`);
        rows.push(await measure(g, mib, mode, mib <= 64 ? 3 : 2, path.join(dir, 'bench.ckpt')));
      }
      g.process.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const f0 = (x: number) => x.toFixed(0);
  const tables: Table[] = [...new Set(rows.map((r) => r.sizeMiB))].map((mib) => ({
    title: `checkpoint, ${mib} MiB heap in 1 GiB guest memory (MB/s of touched memory, best of ${mib <= 64 ? 3 : 2})`,
    headers: ['codec', 'save sync', 'save async', 'restore sync', 'restore async', 'save/CPU-s', 'restore/CPU-s', 'file/touched', 'raw pages'],
    rows: rows
      .filter((r) => r.sizeMiB === mib)
      .map((r) => [r.mode, f0(r.saveSyncMBs), f0(r.saveAsyncMBs), f0(r.restoreSyncMBs), f0(r.restoreAsyncMBs), f0(r.saveCpuMBs), f0(r.restoreCpuMBs), `${(r.ratio * 100).toFixed(1)}%`, String(r.rawPages)]),
    notes: [
      `heap page mix: ${Object.entries(MIX).map(([k, v]) => `${k} ${v * 100}%`).join(', ')}; touched ${rows.find((r) => r.sizeMiB === mib)!.touchedMB.toFixed(1)} MB`,
      'save: gather + compress + sha256 + write + fsync + rename; restore: read + sha256 + decode + decompress + install',
      '*/CPU-s: MB per CPU-second of the sync variant (user+system, all threads): what one idle core does, whatever else runs',
      `async = libuv pool (UV_THREADPOOL_SIZE ${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'}), ${os.availableParallelism()} CPUs; load average at end ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`,
    ],
  }));
  tables.push({
    title: `benchmark.js: encodeCheckpoint, ${SIZES_MIB[0]} MiB heap, in memory (no file)`,
    headers: ['benchmark', 'mean ms', '± rme', 'MB/s'],
    rows: micro.map((m) => [m.name, m.meanMs.toFixed(1), `${m.rmePct.toFixed(1)}%`, f0(m.mbs)]),
  });
  for (const t of tables) process.stdout.write(renderText(t) + '\n');
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileAtomic(
    path.join(RESULTS_DIR, 'checkpoint.json'),
    JSON.stringify(
      { date: new Date().toISOString(), cpus: os.availableParallelism(), loadavg: os.loadavg(), node: process.version, mix: MIX, rows, micro },
      null,
      2,
    ) + '\n',
  );
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
