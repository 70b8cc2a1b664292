/**
 * `npm run bench:switch`: what a CPU-model switch costs (src/switch/system.ts, models.ts).
 *
 * 1. benchmark.js: ThreadContext and ProcessState msgpack encode/decode (ops/s ± rme, record
 *    size). The ProcessState is a real one (the workload's process, sys.process.snapshot()); its
 *    decode is timed with full validation and with the receiver's unchanged address space passed
 *    (the fast path every switch takes).
 * 2. Full switch latency (SwitchRecord.ms), KVM→atomic→KVM and KVM→o3→KVM, on checksum with a
 *    huge iteration count (never exits). Between switches the guest runs a small slice (KVM
 *    ~0.5 ms, atomic/o3 1000 instructions); no cache warming (o3 keeps its caches, takeOverFrom
 *    warms nothing). p50/p90/p99/max of each direction and of the round trip; target ≤ 1 ms p50.
 * 3. Breakdown of one round trip, timing the public pieces of a switch on the main thread,
 *    driven the way System.switchTo does it (token released and acquired around each handoff).
 * 4. Baseline: one KvmCpuClient request with no work (client.stats()), the cost of messaging.
 *
 * Everything is interleaved in one loop (one round of each kind per iteration), so load on a
 * shared machine hits every series alike. Prints tables, writes bench/results/switch.json and
 * bench/results/switch.md.
 */
import Benchmark from 'benchmark';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decodeThreadContext, encodeThreadContext } from '../src/guest/contextCodec.js';
import { decodeProcessState, encodeProcessState } from '../src/guest/processCodec.js';
import { AtomicModel, KvmModel, O3Model, type Handoff } from '../src/switch/models.js';
import { System, type SwitchRecord } from '../src/switch/system.js';
import type { CpuModelName } from '../src/switch/token.js';
import type { ThreadContext } from '../src/guest/threadContext.js';
import { checkBuilt, checkKvm, RESULTS_DIR, workloadPath } from './lib/env.js';
import { renderMarkdown, renderText, type Table } from './lib/table.js';
import { max, percentile, progress } from './lib/util.js';
import { writeFileAtomic } from '../src/util/atomicWrite.js';

const ROUNDS = Number(process.env.SWITCH_ROUNDS ?? 400);
const WARMUP = Number(process.env.SWITCH_WARMUP ?? 30);
const MICRO_MAX_TIME = Number(process.env.SWITCH_MICRO_SECONDS ?? 2);
const KVM_SLICE_S = 0.0005;
const JS_SLICE_INSTS = 1000;
const TARGET_MS = 1;
const WORKLOAD = 'checksum';
const WORKLOAD_ARGS = ['100000000000'];

interface MicroFigure {
  name: string;
  opsPerSec: number;
  rmePct: number;
  meanUs: number;
  bytes: number;
}

interface Summary {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  n: number;
}

function summarize(xs: readonly number[]): Summary {
  return { p50: percentile(xs, 50), p90: percentile(xs, 90), p99: percentile(xs, 99), max: max(xs), n: xs.length };
}

// ---------------------------------------------------------------- 1. codec micro-benchmarks

function microBench(sys: System, tc: ThreadContext): MicroFigure[] {
  const tcBytes = encodeThreadContext(tc);
  const ps = sys.process.snapshot();
  const psBytes = encodeProcessState(ps);
  const memSize = sys.phys.size;
  const aspace = sys.process.aspace;
  // Sanity: the fast path is taken (same mapGeneration) and both decodes agree.
  const full = decodeProcessState(psBytes, memSize);
  const fast = decodeProcessState(psBytes, memSize, aspace);
  if (JSON.stringify(encodeProcessState(full)) !== JSON.stringify(encodeProcessState(fast))) throw new Error('fast-path decode differs');
  if (ps.addressSpace.mapGeneration !== aspace.mapGeneration) throw new Error('snapshot is not of the current address space');

  const sizes: Record<string, number> = {
    encodeThreadContext: tcBytes.length,
    decodeThreadContext: tcBytes.length,
    encodeProcessState: psBytes.length,
    'decodeProcessState (full validation)': psBytes.length,
    'decodeProcessState (receiver aspace, fast path)': psBytes.length,
  };
  let sink = 0;
  const out: MicroFigure[] = [];
  const suite = new Benchmark.Suite('codecs');
  suite
    .add('encodeThreadContext', () => {
      sink += encodeThreadContext(tc).length;
    })
    .add('decodeThreadContext', () => {
      sink += decodeThreadContext(tcBytes).gpr.length;
    })
    .add('encodeProcessState', () => {
      sink += encodeProcessState(ps).length;
    })
    .add('decodeProcessState (full validation)', () => {
      sink += decodeProcessState(psBytes, memSize).random.length;
    })
    .add('decodeProcessState (receiver aspace, fast path)', () => {
      sink += decodeProcessState(psBytes, memSize, aspace).random.length;
    })
    .on('cycle', (ev: Benchmark.Event) => {
      const b = ev.target as unknown as Benchmark;
      if (b.error) throw b.error;
      const name = String(b.name);
      progress(`[switch] ${String(b)}`);
      out.push({ name, opsPerSec: b.hz, rmePct: b.stats.rme, meanUs: b.stats.mean * 1e6, bytes: sizes[name] ?? 0 });
    })
    .run({ async: false, maxTime: MICRO_MAX_TIME } as unknown as Benchmark.Options);
  if (sink < 0) console.log(sink);
  return out;
}

// ---------------------------------------------------------------- 2. full switches

interface RoundTrip {
  out: SwitchRecord;
  back: SwitchRecord;
}

async function systemRoundTrip(sys: System, to: 'atomic' | 'o3'): Promise<RoundTrip> {
  await sys.run({ seconds: KVM_SLICE_S });
  const out = await sys.switchTo(to);
  await sys.run({ insts: JS_SLICE_INSTS });
  const back = await sys.switchTo('kvm');
  if (!out || !back) throw new Error('switch was a no-op');
  return { out, back };
}

// ---------------------------------------------------------------- 3. breakdown

const PIECES = [
  'kvm drain+switchOut (worker)',
  'ProcessState decode',
  'Process.adopt',
  'ThreadContext decode',
  'setThreadContext',
  'code-cache invalidation',
  'o3 resume',
  'token release+acquire (both)',
  'encode on the way back (TC+PS)',
  'kvm takeOverFrom (worker)',
  'total',
] as const;
type Piece = (typeof PIECES)[number];
type Breakdown = Partial<Record<Piece, number>>;

function swapToken(sys: System, from: CpuModelName, to: CpuModelName): void {
  sys.token.release(from);
  sys.token.acquire(to);
}

/**
 * One KVM→js→KVM round trip driven piece by piece, as System.switchTo and the models'
 * takeOverFrom/switchOut do it. The System keeps KVM as its current model throughout (it is
 * KVM again at the end). Atomic runs its 1000-instruction slice through its AtomicCPU; o3 runs
 * no instructions here (resume, then drain an empty pipeline).
 */
async function manualRoundTrip(sys: System, kvm: KvmModel, js: AtomicModel | O3Model): Promise<Breakdown> {
  await sys.run({ seconds: KVM_SLICE_S });
  const b: Breakdown = {};
  const T0 = performance.now();
  let t = T0;
  const lap = (p: Piece) => {
    const now = performance.now();
    b[p] = (b[p] ?? 0) + (now - t);
    t = now;
  };
  await kvm.drain();
  const h: Handoff = await kvm.switchOut();
  lap('kvm drain+switchOut (worker)');
  swapToken(sys, 'kvm', js.name);
  lap('token release+acquire (both)');
  const p = sys.process;
  const state = decodeProcessState(h.processState, p.aspace.phys.size, p.aspace);
  lap('ProcessState decode');
  p.adopt(state);
  lap('Process.adopt');
  js.cpu.invalidateCode();
  if (js instanceof O3Model) js.stream.invalidate();
  lap('code-cache invalidation');
  const tc = decodeThreadContext(h.threadContext);
  lap('ThreadContext decode');
  js.cpu.setThreadContext(tc);
  lap('setThreadContext');
  if (js instanceof O3Model) {
    js.o3.resume();
    lap('o3 resume');
  }
  const tIn = performance.now() - T0;
  // --- the guest's slice on the JS model (not part of any switch)
  if (js instanceof AtomicModel) {
    const r = js.cpu.run(JS_SLICE_INSTS);
    if (r.kind === 'exited' || r.kind === 'faulted') throw new Error(`atomic slice ended the guest: ${r.kind}`);
  } else {
    js.o3.drain();
    if (!js.o3.isDrained) throw new Error('o3 not drained');
  }
  // --- and back
  const T1 = performance.now();
  t = T1;
  const back: Handoff = { threadContext: encodeThreadContext(js.cpu.getThreadContext()), processState: encodeProcessState(p.snapshot()) };
  lap('encode on the way back (TC+PS)');
  swapToken(sys, js.name, 'kvm');
  lap('token release+acquire (both)');
  await kvm.takeOverFrom(back);
  lap('kvm takeOverFrom (worker)');
  b.total = tIn + (performance.now() - T1);
  return b;
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  checkKvm();
  checkBuilt([WORKLOAD]);
  progress(`[switch] System.create ${WORKLOAD} ${WORKLOAD_ARGS.join(' ')} (kvm, atomic, o3)`);
  const sys = await System.create({
    models: ['kvm', 'atomic', 'o3'],
    program: workloadPath(WORKLOAD),
    args: WORKLOAD_ARGS,
    capture: true,
    env: [],
    onWarning: (m) => progress(`[switch] guest warning: ${m}`),
  });
  let micro: MicroFigure[] = [];
  const series = {
    atomic: { out: [] as number[], back: [] as number[], rt: [] as number[], bytesOut: 0, bytesBack: 0 },
    o3: { out: [] as number[], back: [] as number[], rt: [] as number[], bytesOut: 0, bytesBack: 0 },
  };
  const breakdowns = { atomic: [] as Breakdown[], o3: [] as Breakdown[] };
  const baseline: number[] = [];
  try {
    await sys.start('kvm');
    const kvm = sys.model('kvm') as KvmModel;
    const atomic = sys.model('atomic') as AtomicModel;
    const o3 = sys.model('o3') as O3Model;
    // A real guest mid-run, held by atomic: the main thread's process and registers are current.
    await sys.run({ seconds: 0.01 });
    await sys.switchTo('atomic');
    await sys.run({ insts: JS_SLICE_INSTS });
    await sys.model('atomic').drain();
    progress(`[switch] benchmark.js: codecs (~${MICRO_MAX_TIME} s each)`);
    micro = microBench(sys, await atomic.threadContext());
    await sys.switchTo('kvm');
    progress(`[switch] ${WARMUP} warm-up + ${ROUNDS} rounds, each: sys kvm→atomic→kvm, sys kvm→o3→kvm, manual atomic, manual o3, 3 baseline requests`);
    for (let i = 0; i < WARMUP + ROUNDS; i++) {
      const keep = i >= WARMUP;
      for (const to of ['atomic', 'o3'] as const) {
        const r = await systemRoundTrip(sys, to);
        if (keep) {
          const s = series[to];
          s.out.push(r.out.ms);
          s.back.push(r.back.ms);
          s.rt.push(r.out.ms + r.back.ms);
          s.bytesOut = r.out.bytes;
          s.bytesBack = r.back.bytes;
        }
      }
      if (sys.current !== 'kvm') throw new Error('expected KVM to hold the guest');
      const ba = await manualRoundTrip(sys, kvm, atomic);
      const bo = await manualRoundTrip(sys, kvm, o3);
      for (let k = 0; k < 3; k++) {
        const t0 = performance.now();
        await kvm.client.stats();
        const dt = performance.now() - t0;
        if (keep) baseline.push(dt);
      }
      if (keep) {
        breakdowns.atomic.push(ba);
        breakdowns.o3.push(bo);
      }
      if ((i + 1) % 100 === 0) progress(`[switch] ${i + 1}/${WARMUP + ROUNDS}`);
    }
    if (sys.state !== 'running') throw new Error(`the guest stopped during the bench (${sys.state})`);
  } finally {
    await sys.close();
  }

  // ------------------------------------------------------------ tables
  const f3 = (x: number) => x.toFixed(3);
  const tables: Table[] = [];
  tables.push({
    title: `benchmark.js: handoff codecs (${WORKLOAD}'s real ProcessState)`,
    headers: ['benchmark', 'ops/s', '± rme', 'mean µs', 'record bytes'],
    rows: micro.map((m) => [m.name, Math.round(m.opsPerSec).toLocaleString('en-US'), `${m.rmePct.toFixed(1)}%`, m.meanUs.toFixed(2), String(m.bytes)]),
  });
  const sumRows: string[][] = [];
  const summaries: Record<string, Summary> = {};
  for (const to of ['atomic', 'o3'] as const) {
    const s = series[to];
    const rows: [string, number[]][] = [
      [`kvm→${to}`, s.out],
      [`${to}→kvm`, s.back],
      [`round trip kvm→${to}→kvm`, s.rt],
    ];
    for (const [name, xs] of rows) {
      const sm = summarize(xs);
      summaries[name] = sm;
      const isRt = name.startsWith('round');
      sumRows.push([
        name,
        f3(sm.p50),
        f3(sm.p90),
        f3(sm.p99),
        f3(sm.max),
        String(sm.n),
        isRt ? `≤ ${TARGET_MS} ms p50` : '',
        isRt ? (sm.p50 <= TARGET_MS ? 'PASS' : 'MISS') : '',
      ]);
    }
  }
  const base = summarize(baseline);
  summaries.baseline = base;
  tables.push({
    title: `full switch latency, SwitchRecord.ms (ms), ${WORKLOAD} ${WORKLOAD_ARGS.join(' ')}, ${ROUNDS} round trips each`,
    headers: ['switch', 'p50', 'p90', 'p99', 'max', 'n', 'target', ''],
    rows: sumRows,
    notes: [
      `slices between switches: KVM ${KVM_SLICE_S * 1000} ms, atomic/o3 ${JS_SLICE_INSTS} instructions; no cache warming; first ${WARMUP} rounds discarded`,
      `handoff size: kvm→atomic ${series.atomic.bytesOut} B, atomic→kvm ${series.atomic.bytesBack} B, kvm→o3 ${series.o3.bytesOut} B, o3→kvm ${series.o3.bytesBack} B`,
      `round trip = the two directions' SwitchRecord.ms of the same round summed (percentiles of the sum)`,
    ],
  });
  const pieceRows: string[][] = [];
  const breakdownSummary: Record<string, Record<string, Summary>> = { atomic: {}, o3: {} };
  for (const piece of PIECES) {
    const row: string[] = [piece];
    for (const to of ['atomic', 'o3'] as const) {
      const xs = breakdowns[to].map((b) => b[piece]).filter((x): x is number => x !== undefined);
      if (xs.length === 0) {
        row.push('—', '—');
        continue;
      }
      const sm = summarize(xs);
      breakdownSummary[to]![piece] = sm;
      row.push(f3(sm.p50), f3(sm.p99));
    }
    pieceRows.push(row);
  }
  const tot = breakdownSummary.atomic!.total!.p50;
  tables.push({
    title: 'breakdown of one round trip kvm→js→kvm, main-thread timing of the public pieces (ms)',
    headers: ['piece', 'atomic p50', 'atomic p99', 'o3 p50', 'o3 p99'],
    rows: pieceRows,
    notes: [
      'worker pieces include the worker-side work: switchOut = KVM_GET_* + snapshot + encode both records; takeOverFrom = decode both + adopt + KVM_SET_*',
      'token row: both release+acquire pairs of the round trip; total excludes the guest slice on the JS model',
      'o3 rows run no guest instructions on o3 (resume, then drain an empty pipeline); atomic runs 1000 via AtomicCPU.run',
      `per-piece p50s do not add up to the total's p50 exactly (percentiles of different samples)`,
      `baseline worker request (client.stats(), no work): p50 ${f3(base.p50)} ms, p99 ${f3(base.p99)} ms; ` +
        `2 worker requests per round trip ≈ ${f3(2 * base.p50)} ms = ${((200 * base.p50) / tot).toFixed(0)}% of the atomic round trip's p50`,
    ],
  });
  tables.push({
    title: 'worker round-trip baseline (ms)',
    headers: ['request', 'p50', 'p90', 'p99', 'max', 'n'],
    rows: [['KvmCpuClient.stats() (no work)', f3(base.p50), f3(base.p90), f3(base.p99), f3(base.max), String(base.n)]],
  });

  const header = `switchsim switch benchmark — ${new Date().toISOString()}, node ${process.version}, ${os.availableParallelism()} CPUs, load average ${os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}\n`;
  process.stdout.write(header + '\n');
  for (const t of tables) process.stdout.write(renderText(t) + '\n');
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileAtomic(path.join(RESULTS_DIR, 'switch.md'), `## switch latency\n\n${header}\n` + tables.map(renderMarkdown).join('\n'));
  writeFileAtomic(
    path.join(RESULTS_DIR, 'switch.json'),
    JSON.stringify(
      {
        date: new Date().toISOString(),
        node: process.version,
        cpus: os.availableParallelism(),
        loadavg: os.loadavg(),
        workload: { name: WORKLOAD, args: WORKLOAD_ARGS },
        rounds: ROUNDS,
        warmup: WARMUP,
        slices: { kvmSeconds: KVM_SLICE_S, jsInsts: JS_SLICE_INSTS },
        targetMsP50: TARGET_MS,
        micro,
        latency: summaries,
        pass: {
          atomic: (summaries['round trip kvm→atomic→kvm']?.p50 ?? Infinity) <= TARGET_MS,
          o3: (summaries['round trip kvm→o3→kvm']?.p50 ?? Infinity) <= TARGET_MS,
        },
        handoffBytes: { atomicOut: series.atomic.bytesOut, atomicBack: series.atomic.bytesBack, o3Out: series.o3.bytesOut, o3Back: series.o3.bytesBack },
        breakdown: breakdownSummary,
        baseline: base,
        samples: { atomic: series.atomic, o3: series.o3, baseline },
      },
      null,
      2,
    ) + '\n',
  );
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
