/**
 * The last step of `npm run bench`: reads every bench/results/*.json that is present and writes
 * bench/results/SUMMARY.md, one section per benchmark with its key figures and targets:
 *
 *   kvm.json         native vs KVM per workload (in-guest ratio, target >= 0.95 on compute),
 *                    syscall round trip, KvmCpuClient start-up
 *   atomic.json      atomic CPU MIPS per workload (target >= 30 MIPS, integer workloads)
 *   o3.json          o3 MIPS per workload (target >= 1 MIPS)
 *   switch.json      switch latency p50/p99 per direction (target: round trip p50 <= 1 ms)
 *   checkpoint.json  checkpoint save/restore MB/s (target 500 MB/s)
 *   sampling.json    sampling speed and error against full o3 runs
 *   scaling.json     host-to-guest cycle scaling (hostFactor, errors)
 *
 * Every file is read defensively: a missing file gives "not run", an unreadable one or an
 * unexpected shape says so in its section, and never stops the summary. Prints the markdown too.
 *
 *   node dist/bench/summary.js [--results DIR] [--out FILE]
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { renderMarkdown, type Table } from './lib/table.js';
import { writeFileAtomic } from '../src/util/atomicWrite.js';

// Targets, as the benchmarks state them (bench/lib/compare.ts COMPUTE_TARGET, bench/lib/syscall.ts
// SYSCALL_TARGET_US, bench/speed.ts, bench/switch.ts TARGET_MS, src/switch/README.md).
export const TARGETS = {
  kvmInGuestRatio: 0.95,
  syscallP50Us: 30,
  atomicMips: 30,
  o3Mips: 1,
  switchRoundTripP50Ms: 1,
  checkpointMBs: 500,
} as const;

/** The result files, in the order their sections appear. */
export const FILES = ['kvm', 'atomic', 'o3', 'switch', 'checkpoint', 'sampling', 'scaling'] as const;

// ---------------------------------------------------------------------------------------------
// Defensive access

type Json = unknown;

function isObj(v: Json): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Follows a dotted path ('summary.ipc.mean'); undefined wherever the shape differs. */
function get(v: Json, p: string): Json {
  let cur: Json = v;
  for (const k of p.split('.')) {
    if (!isObj(cur)) return undefined;
    cur = cur[k];
  }
  return cur;
}

function num(v: Json, ...paths: string[]): number | undefined {
  for (const p of paths) {
    const x = get(v, p);
    if (typeof x === 'number' && Number.isFinite(x)) return x;
  }
  return undefined;
}

function str(v: Json, ...paths: string[]): string | undefined {
  for (const p of paths) {
    const x = get(v, p);
    if (typeof x === 'string') return x;
  }
  return undefined;
}

function bool(v: Json, p: string): boolean | undefined {
  const x = get(v, p);
  return typeof x === 'boolean' ? x : undefined;
}

function arr(v: Json, ...paths: string[]): Json[] {
  for (const p of paths) {
    const x = p === '' ? v : get(v, p);
    if (Array.isArray(x)) return x;
  }
  return [];
}

// ---------------------------------------------------------------------------------------------
// Formatting

const NA = 'n/a';

function f(x: number | undefined, digits = 2): string {
  return x === undefined || !Number.isFinite(x) ? NA : x.toFixed(digits);
}

function pct(x: number | undefined, digits = 1, signed = false): string {
  if (x === undefined || !Number.isFinite(x)) return NA;
  return `${signed && x >= 0 ? '+' : ''}${(x * 100).toFixed(digits)}%`;
}

/** Functional warming per sample: one count, or one per fast-forward model (bench:sampling's mode defaults). */
function warmingText(v: Json | undefined): string {
  if (typeof v === 'number') return int(v);
  if (isObj(v)) return Object.entries(v).map(([k, x]) => `${int(typeof x === 'number' ? x : undefined)} (${k})`).join(', ');
  return int(undefined);
}

function int(x: number | undefined): string {
  return x === undefined || !Number.isFinite(x) ? NA : Math.round(x).toLocaleString('en-US');
}

/** Seconds with a unit. */
function secs(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return NA;
  if (x < 1) return `${(x * 1e3).toFixed(1)} ms`;
  if (x < 600) return `${x.toFixed(1)} s`;
  return `${(x / 60).toFixed(1)} min`;
}

function mark(ok: boolean | undefined | null): string {
  return ok === undefined || ok === null ? NA : ok ? 'ok' : 'MISS';
}

function geomean(xs: readonly (number | undefined)[]): number | undefined {
  const ok = xs.filter((x): x is number => x !== undefined && x > 0 && Number.isFinite(x));
  return ok.length ? Math.exp(ok.reduce((a, x) => a + Math.log(x), 0) / ok.length) : undefined;
}

function argsOf(v: Json): string {
  const a = arr(v, 'args');
  return a.map(String).join(' ');
}

// ---------------------------------------------------------------------------------------------
// Sections

export interface Section {
  /** The benchmark, e.g. 'KVM vs native'. */
  title: string;
  file: string;
  /** When the result was written, if the file says. */
  date?: string;
  /** One line for the overview. */
  headline: string;
  /** ok / MISS / n/a against the benchmark's target(s). */
  status: string;
  tables: Table[];
  notes: string[];
}

type Summarizer = (j: Json) => Omit<Section, 'file' | 'title'>;

const kvm: Summarizer = (j) => {
  const compare = arr(j, 'compare').filter(isObj);
  const rows = compare.map((r) => {
    const err = str(r, 'error');
    const cls = str(r, 'cls') ?? str(r, 'kind') ?? '';
    const target = bool(r, 'meetsTarget') ?? (cls === 'compute' ? (num(r, 'inGuestRatio') ?? NaN) >= TARGETS.kvmInGuestRatio : null);
    return {
      cls,
      inGuest: num(r, 'inGuestRatio'),
      paired: num(r, 'inGuestRatioPaired'),
      wall: num(r, 'wallRatio'),
      cells: err
        ? [str(r, 'name') ?? '?', cls, NA, NA, NA, NA, NA, `FAILED: ${err.slice(0, 80)}`]
        : [
            str(r, 'name') ?? '?',
            cls,
            f((num(r, 'median.nativeCpu') ?? NaN) * 1e3, 1),
            f((num(r, 'median.kvmInGuest') ?? NaN) * 1e3, 1),
            f(num(r, 'inGuestRatio'), 3),
            f(num(r, 'inGuestRatioPaired'), 3),
            f(num(r, 'wallRatio'), 3),
            mark(target),
          ],
      target,
    };
  });
  const compute = rows.filter((r) => r.cls === 'compute');
  const gm = geomean(compute.map((r) => r.inGuest));
  const tables: Table[] = [];
  if (rows.length) {
    tables.push({
      title: 'Native vs KVM per workload (median of rounds)',
      headers: ['workload', 'class', 'native cpu ms', 'KVM in-guest ms', 'in-guest ratio', 'paired', 'wall ratio', `>= ${TARGETS.kvmInGuestRatio}`],
      align: ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'l'],
      rows: [
        ...rows.map((r) => r.cells),
        ['geomean (compute)', '', '', '', f(gm, 3), f(geomean(compute.map((r) => r.paired)), 3), f(geomean(compute.map((r) => r.wall)), 3), mark(gm === undefined ? null : gm >= TARGETS.kvmInGuestRatio)],
      ],
      notes: [
        'in-guest ratio = native cpu / KVM in-guest time (1.0 = native speed); wall ratio includes Node/worker/VM start-up (fixed ~0.35 s).',
      ],
    });
  }
  const sys = get(j, 'syscall');
  const sysOk = bool(sys, 'meetsTarget');
  if (isObj(sys)) {
    tables.push({
      title: 'Syscall round trip (syscall_latency)',
      headers: ['where', 'p50 µs', 'p99 µs', `p50 <= ${TARGETS.syscallP50Us} µs`],
      align: ['l', 'r', 'r', 'l'],
      rows: [
        ['native', f(num(sys, 'summary.native.p50Us'), 2), f(num(sys, 'summary.native.p99Us'), 2), ''],
        ['KVM', f(num(sys, 'summary.kvm.p50Us'), 2), f(num(sys, 'summary.kvm.p99Us'), 2), mark(sysOk)],
      ],
    });
  }
  const st = get(j, 'startup');
  if (isObj(st)) {
    const benches = arr(st, 'benchmarks').filter(isObj);
    tables.push({
      title: 'Start-up',
      headers: ['what', 'p50 / mean ms'],
      align: ['l', 'r'],
      rows: [
        ...benches.map((b) => [str(b, 'name') ?? '?', f(num(b, 'meanMs'), 2)]),
        [str(st, 'clientStart.name') ?? 'KvmCpuClient.start -> ready', f(num(st, 'clientStart.p50Ms'), 1)],
        ...(isObj(get(st, 'bareWorkerStart')) ? [[str(st, 'bareWorkerStart.name') ?? 'bare worker', f(num(st, 'bareWorkerStart.p50Ms'), 1)]] : []),
      ],
    });
  }
  const problems = arr(j, 'problems').map(String);
  const misses = compute.filter((r) => r.target === false).length;
  const statusOk = compute.length > 0 && gm !== undefined && gm >= TARGETS.kvmInGuestRatio && sysOk !== false;
  return {
    date: str(j, 'generatedAt'),
    headline:
      `compute geomean in-guest ratio ${f(gm, 3)} (target >= ${TARGETS.kvmInGuestRatio}; ${misses} of ${compute.length} compute workloads below)` +
      (isObj(sys) ? `; syscall p50 ${f(num(sys, 'summary.kvm.p50Us'), 1)} µs under KVM` : ''),
    status: compute.length === 0 ? NA : statusOk ? (misses ? 'ok (geomean)' : 'ok') : 'MISS',
    tables,
    notes: problems.length ? problems.map((p) => `problem: ${p}`) : [],
  };
};

function speed(model: 'atomic' | 'o3'): Summarizer {
  const target = model === 'atomic' ? TARGETS.atomicMips : TARGETS.o3Mips;
  return (j) => {
    const rows = arr(j, 'rows').filter(isObj);
    const counted = rows.filter((r) => model === 'o3' || bool(r, 'integer') !== false);
    const gm = geomean(counted.map((r) => num(r, 'medianMips')));
    const misses = counted.filter((r) => (num(r, 'medianMips') ?? 0) < target).length;
    return {
      date: str(j, 'generatedAt'),
      headline: `geomean ${f(gm, 2)} MIPS over ${counted.length} ${model === 'atomic' ? 'integer ' : ''}workloads (target >= ${target} MIPS; ${misses} below)`,
      status: counted.length === 0 ? NA : misses === 0 ? 'ok' : 'MISS',
      tables: [
        {
          title: `${model} CPU speed (guest MIPS)`,
          headers: ['workload', 'args', 'guest insts', 'median MIPS', 'best MIPS', 'output = native', `>= ${target} MIPS`],
          align: ['l', 'l', 'r', 'r', 'r', 'l', 'l'],
          rows: rows.map((r) => {
            const m = num(r, 'medianMips');
            const inTarget = model === 'o3' || bool(r, 'integer') !== false;
            return [
              str(r, 'name') ?? '?',
              argsOf(r),
              int(num(r, 'instructions')),
              f(m, 2),
              f(num(r, 'bestMips'), 2),
              mark(bool(r, 'outputMatches')),
              inTarget ? mark(m === undefined ? null : m >= target) : 'n/a (fp)',
            ];
          }),
        },
      ],
      notes: num(j, 'hostFreqHz') ? [`host ${f(num(j, 'hostFreqHz')! / 1e9, 2)} GHz`] : [],
    };
  };
}

const switchLatency: Summarizer = (j) => {
  const target = num(j, 'targetMsP50') ?? TARGETS.switchRoundTripP50Ms;
  const lat = get(j, 'latency');
  const entries = isObj(lat) ? Object.entries(lat).filter(([, v]) => isObj(v)) : [];
  const rt = entries.filter(([k]) => k.startsWith('round trip'));
  const misses = rt.filter(([, v]) => (num(v, 'p50') ?? Infinity) > target).length;
  return {
    date: str(j, 'date', 'generatedAt'),
    headline: rt.length
      ? rt.map(([k, v]) => `${k.replace('round trip ', '')} p50 ${f(num(v, 'p50'), 3)} ms`).join(', ') + ` (target p50 <= ${target} ms)`
      : 'no round-trip figures',
    status: rt.length === 0 ? NA : misses === 0 ? 'ok' : 'MISS',
    tables: [
      {
        title: `Switch latency (ms, ${int(num(j, 'rounds'))} rounds)`,
        headers: ['switch', 'p50', 'p99', 'max', 'n', 'target', ''],
        align: ['l', 'r', 'r', 'r', 'r', 'l', 'l'],
        rows: entries.map(([k, v]) => {
          const isRt = k.startsWith('round trip');
          const p50 = num(v, 'p50');
          return [
            k === 'baseline' ? 'worker round trip (baseline)' : k,
            f(p50, 3),
            f(num(v, 'p99'), 3),
            f(num(v, 'max'), 3),
            int(num(v, 'n')),
            isRt ? `p50 <= ${target} ms` : '',
            isRt ? mark(p50 === undefined ? null : p50 <= target) : '',
          ];
        }),
      },
    ],
    notes: [],
  };
};

const checkpoint: Summarizer = (j) => {
  const t = TARGETS.checkpointMBs;
  const rows = arr(j, 'rows').filter(isObj);
  const best = (key: string) => Math.max(...rows.map((r) => Math.max(num(r, `${key}SyncMBs`) ?? 0, num(r, `${key}AsyncMBs`) ?? 0)), 0);
  const bestSave = rows.length ? best('save') : undefined;
  const bestRestore = rows.length ? best('restore') : undefined;
  const def = rows.filter((r) => (str(r, 'mode') ?? '').includes('default'));
  const defSave = def.length ? Math.max(...def.map((r) => Math.max(num(r, 'saveSyncMBs') ?? 0, num(r, 'saveAsyncMBs') ?? 0))) : undefined;
  const defRestore = def.length ? Math.max(...def.map((r) => Math.max(num(r, 'restoreSyncMBs') ?? 0, num(r, 'restoreAsyncMBs') ?? 0))) : undefined;
  const ok = bestSave !== undefined && bestRestore !== undefined ? bestSave >= t && bestRestore >= t : undefined;
  const micro = arr(j, 'micro').filter(isObj);
  return {
    date: str(j, 'date', 'generatedAt'),
    headline:
      `best save ${f(bestSave, 0)} MB/s, best restore ${f(bestRestore, 0)} MB/s (target ${t} MB/s)` +
      (def.length ? `; default codec save ${f(defSave, 0)}, restore ${f(defRestore, 0)} MB/s` : ''),
    status: ok === undefined ? NA : ok ? 'ok' : 'MISS',
    tables: [
      {
        title: 'Checkpoint save/restore (MB/s of touched memory)',
        headers: ['heap MiB', 'codec', 'save sync', 'save async', 'restore sync', 'restore async', 'file/touched', `save >= ${t}`, `restore >= ${t}`],
        align: ['r', 'l', 'r', 'r', 'r', 'r', 'r', 'l', 'l'],
        rows: rows.map((r) => {
          const s = Math.max(num(r, 'saveSyncMBs') ?? 0, num(r, 'saveAsyncMBs') ?? 0);
          const rs = Math.max(num(r, 'restoreSyncMBs') ?? 0, num(r, 'restoreAsyncMBs') ?? 0);
          return [
            int(num(r, 'sizeMiB')),
            str(r, 'mode') ?? '?',
            f(num(r, 'saveSyncMBs'), 0),
            f(num(r, 'saveAsyncMBs'), 0),
            f(num(r, 'restoreSyncMBs'), 0),
            f(num(r, 'restoreAsyncMBs'), 0),
            pct(num(r, 'ratio'), 1),
            mark(s >= t),
            mark(rs >= t),
          ];
        }),
      },
      ...(micro.length
        ? [
            {
              title: 'encodeCheckpoint in memory (benchmark.js)',
              headers: ['benchmark', 'mean ms', 'MB/s'],
              rows: micro.map((m) => [str(m, 'name') ?? '?', f(num(m, 'meanMs'), 1), f(num(m, 'mbs'), 0)]),
            },
          ]
        : []),
    ],
    notes: [],
  };
};

/**
 * sampling.json (bench/sampling.ts): `hostRateRows` (the default KVM mode) or else `rows` (one validation study per workload: fullIpc,
 * sampledIpc ± ipcHalfWidth at `confidence`, error, samples, wall times, speedup) and
 * `coverage` (repeats of one workload with other seeds: coverage997, coverage95, …), with the
 * targets `targetError`, `goalError`, `targetSpeedup` at the top level. Older or hand-written
 * files with per-study SamplingResult fields (config, summary, validation) are read too.
 */
const sampling: Summarizer = (j) => {
  // The default mode's rows (KVM with host-rate probes) when the file has them.
  let studies = arr(j, 'hostRateRows').filter(isObj);
  if (studies.length === 0) studies = arr(j, 'rows', 'studies', 'results', 'workloads', '').filter(isObj);
  if (studies.length === 0 && isObj(j)) studies = [j];
  const target = num(j, 'targetError', 'config.targetError');
  const goal = num(j, 'goalError');
  const speedTarget = num(j, 'targetSpeedup');
  const conf = num(j, 'confidence');
  const errOf = (s: Json) => num(s, 'error', 'ipcError', 'validation.error', 'result.validation.error');
  const speedOf = (s: Json) => num(s, 'speedup', 'validation.speedup', 'result.validation.speedup');
  const cols: { h: string; get: (s: Json) => string }[] = [
    { h: 'workload', get: (s) => str(s, 'workload', 'name', 'program', 'config.program', 'result.config.program') ?? '?' },
    { h: 'args', get: (s) => arr(s, 'args', 'config.args', 'result.config.args').map(String).join(' ') },
    { h: 'full IPC', get: (s) => f(num(s, 'fullIpc', 'validation.fullIpc', 'result.validation.fullIpc'), 3) },
    {
      h: `sampled IPC ± CI${conf !== undefined ? ` (${f(conf * 100, 1)}%)` : ''}`,
      get: (s) => {
        const m = num(s, 'sampledIpc', 'ipc', 'summary.ipc.mean', 'result.summary.ipc.mean', 'ipcMean');
        const h = num(s, 'ipcHalfWidth', 'halfWidth', 'summary.ipc.halfWidth', 'result.summary.ipc.halfWidth');
        return m === undefined ? NA : `${f(m, 3)} ± ${f(h, 3)}`;
      },
    },
    { h: 'error', get: (s) => pct(errOf(s), 2, true) },
    { h: 'samples', get: (s) => int(num(s, 'samples', 'summary.samples', 'result.summary.samples', 'nSamples') ?? (arr(s, 'samples').length || undefined)) },
    { h: 'full o3 wall', get: (s) => secs(num(s, 'fullWallSeconds', 'validation.fullWallSeconds', 'result.validation.fullWallSeconds')) },
    {
      h: 'sampled wall',
      get: (s) => secs(num(s, 'sampledWallSeconds', 'wallSeconds', 'validation.sampledWallSeconds', 'result.validation.sampledWallSeconds', 'summary.hostSeconds.total', 'result.summary.hostSeconds.total')),
    },
    {
      h: 'speedup',
      get: (s) => {
        const x = speedOf(s);
        return x === undefined ? NA : `${f(x, 1)}×`;
      },
    },
    {
      h: `error <= ${target !== undefined ? pct(target, 0) : '?'}`,
      get: (s) => {
        const e = errOf(s);
        return target === undefined || e === undefined ? NA : mark(Math.abs(e) <= target);
      },
    },
    {
      h: `speedup >= ${speedTarget !== undefined ? `${speedTarget}×` : '?'}`,
      get: (s) => {
        const x = speedOf(s);
        return speedTarget === undefined || x === undefined ? NA : mark(x >= speedTarget);
      },
    },
  ];
  const table = studies.map((s) => cols.map((c) => c.get(s)));
  // Keep only the columns some study fills.
  const keep = cols.map((_, i) => i === 0 || table.some((r) => r[i] !== NA && r[i] !== '' && r[i] !== '?'));
  const errs = studies.map(errOf).filter((x): x is number => x !== undefined);
  const speedups = studies.map(speedOf).filter((x): x is number => x !== undefined);
  const maxAbs = errs.length ? Math.max(...errs.map(Math.abs)) : undefined;
  const errMisses = target === undefined ? 0 : errs.filter((e) => Math.abs(e) > target).length;
  const speedMisses = speedTarget === undefined ? 0 : speedups.filter((x) => x < speedTarget).length;
  const recognised = keep.filter(Boolean).length > 1;
  const tables: Table[] = recognised
    ? [
        {
          title: 'Sampled vs full o3 runs',
          headers: cols.filter((_, i) => keep[i]).map((c) => c.h),
          align: cols.filter((_, i) => keep[i]).map((c) => (c.h === 'workload' || c.h === 'args' || c.h.startsWith('error <=') || c.h.startsWith('speedup >=') ? 'l' : 'r')),
          rows: table.map((r) => r.filter((_, i) => keep[i])),
        },
      ]
    : [genericTable('sampling.json (fields as written)', studies)];
  const atomicRows = arr(j, 'atomicRows').filter(isObj);
  if (atomicRows.length) {
    tables.push({
      title: 'The same sampling with atomic fast-forward (exact instruction counts, phase-stratified)',
      headers: ['workload', 'full IPC', 'sampled IPC ± CI', 'error', 'samples', 'sampled wall', 'speedup'],
      rows: atomicRows.map((r) => [
        str(r, 'workload') ?? '?',
        f(num(r, 'fullIpc'), 3),
        `${f(num(r, 'sampledIpc'), 3)} ± ${f(num(r, 'ipcHalfWidth'), 3)}`,
        pct(num(r, 'error'), 2, true),
        int(num(r, 'samples')),
        secs(num(r, 'sampledWallSeconds')),
        num(r, 'speedup') === undefined ? NA : `${f(num(r, 'speedup'), 1)}×`,
      ]),
    });
  }
  const cov = get(j, 'coverage');
  let covHeadline = '';
  if (isObj(cov)) {
    const runs = num(cov, 'runs');
    const c997 = num(cov, 'coverage997');
    const c95 = num(cov, 'coverage95');
    const label = (e: string | undefined) => (e === 'ratio' ? '1 / mean CPI' : e === 'meanIpc' ? 'mean of per-sample IPCs' : (e ?? '?'));
    const est = label(str(cov, 'estimator'));
    const other = label(str(cov, 'otherEstimator'));
    covHeadline = `; coverage ${pct(c997, 0)} at 99.7%, ${pct(c95, 0)} at 95% (${int(runs)} seeds, ${str(cov, 'workload') ?? '?'})`;
    tables.push({
      title: `Coverage: ${int(runs)} sampled runs of ${str(cov, 'workload') ?? '?'} ${argsOf(cov)} with different seeds`,
      headers: ['estimator', 'stated confidence', 'CI contains full IPC', 'mean relative half-width'],
      align: ['l', 'r', 'r', 'r'],
      rows: [
        [est, '99.7%', pct(c997, 1), pct(num(cov, 'meanRelHalfWidth997'), 2)],
        [est, '95%', pct(c95, 1), pct(num(cov, 'meanRelHalfWidth95'), 2)],
        ...(num(cov, 'coverage68') !== undefined ? [[est, '68%', pct(num(cov, 'coverage68'), 1), pct(num(cov, 'meanRelHalfWidth68'), 2)]] : []),
        ...(num(cov, 'otherCoverage997') !== undefined
          ? [
              [other, '99.7%', pct(num(cov, 'otherCoverage997'), 1), ''],
              [other, '95%', pct(num(cov, 'otherCoverage95'), 1), ''],
              ...(num(cov, 'otherCoverage68') !== undefined ? [[other, '68%', pct(num(cov, 'otherCoverage68'), 1), '']] : []),
            ]
          : []),
      ],
      notes: [
        `full IPC ${f(num(cov, 'fullIpc'), 4)}; ${f(num(cov, 'meanSamples'), 1)} samples per run; ${str(cov, 'fastForward') ?? '?'} fast-forward; ` +
          `error over the runs (${est}): mean ${pct(num(cov, 'meanError'), 2, true)}, sd ${pct(num(cov, 'sdError'), 2)}, max |error| ${pct(num(cov, 'maxAbsError'), 2)}`,
      ],
    });
  }
  const notes: string[] = [];
  const st = get(j, 'settings');
  if (isObj(st)) {
    notes.push(
      `settings: functional warming ${warmingText(get(st, 'functionalWarmInsts'))}, detailed warm-up ${warmingText(get(st, 'detailedWarmInsts'))}, measured unit ${int(num(st, 'measureInsts'))} instructions per sample; ` +
        `~${int(num(st, 'targetSamples'))} samples per program; ${str(st, 'fastForward') ?? '?'} fast-forward; estimator ${str(st, 'estimator') ?? '?'}`,
    );
  }
  if (num(j, 'benchmarkWallSeconds') !== undefined) notes.push(`benchmark wall time ${secs(num(j, 'benchmarkWallSeconds'))}`);
  return {
    date: str(j, 'generatedAt', 'date'),
    headline: errs.length || speedups.length
      ? `max abs IPC error ${pct(maxAbs, 2)}${target !== undefined ? ` (target ${pct(target, 1)}${goal !== undefined ? `, goal ${pct(goal, 1)}` : ''})` : ''}, ` +
        `speedup geomean ${f(geomean(speedups), 1)}×${speedTarget !== undefined ? ` (target ${speedTarget}×; ${speedMisses} below)` : ''} over ${studies.length} workload(s)${covHeadline}`
      : `${studies.length} run(s)`,
    status: target !== undefined && maxAbs !== undefined ? (errMisses === 0 && speedMisses === 0 ? 'ok' : 'MISS') : NA,
    tables,
    notes,
  };
};

/** scaling.json (bench/scaling.ts): ScalingTable plus the analysis of bench/lib/scaling.ts. */
const scaling: Summarizer = (j) => {
  const rows = arr(j, 'rows').filter(isObj);
  const gf = num(j, 'globalFactor');
  const perW = get(j, 'perWorkloadFactor');
  const workloads = [...new Set(rows.map((r) => str(r, 'workload') ?? '?'))];
  const meanAbs = (xs: (number | undefined)[]) => {
    const ok = xs.filter((x): x is number => x !== undefined);
    return ok.length ? ok.reduce((a, x) => a + Math.abs(x), 0) / ok.length : undefined;
  };
  const byWorkload = workloads.map((w) => {
    const rs = rows.filter((r) => (str(r, 'workload') ?? '?') === w);
    return [
      w,
      String(rs.length),
      f(num(perW, w), 3),
      f(geomean(rs.map((r) => num(r, 'hostFactor'))), 3),
      pct(meanAbs(rs.map((r) => num(r, 'errorGlobal'))), 1),
      pct(meanAbs(rs.map((r) => num(r, 'errorPerWorkload'))), 1),
    ];
  });
  const tables: Table[] = [
    {
      title: 'Cycle scaling per workload',
      headers: ['workload', 'regions', 'own factor', 'geomean hostFactor', 'mean |err| global', 'mean |err| own factor'],
      rows: byWorkload,
    },
    {
      title: 'Cycle scaling per region',
      headers: ['workload', 'region', 'insts', 'host CPI', 'o3 CPI', 'hostFactor', 'err global', 'err own factor'],
      align: ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r'],
      rows: rows.map((r) => [
        str(r, 'workload') ?? '?',
        str(r, 'region') ?? '?',
        int(num(r, 'insts')),
        f(num(r, 'hostCpi'), 3),
        f(num(r, 'o3Cpi'), 3),
        f(num(r, 'hostFactor'), 3),
        pct(num(r, 'errorGlobal'), 1, true),
        pct(num(r, 'errorPerWorkload'), 1, true),
      ]),
    },
  ];
  const byLength = arr(j, 'byLength').filter(isObj);
  if (byLength.length) {
    tables.push({
      title: 'Mean |error| by region length',
      headers: ['length', 'regions', 'global factor', 'geomean factor', 'own factor'],
      rows: byLength.map((b) => [
        str(b, 'label') ?? `${int(num(b, 'lo'))}-${int(num(b, 'hi'))}`,
        int(num(b, 'rows')),
        pct(num(b, 'meanAbsErrorGlobal'), 1),
        pct(num(b, 'meanAbsErrorGeo'), 1),
        pct(num(b, 'meanAbsErrorPerWorkload'), 1),
      ]),
    });
  }
  const mg = num(j, 'summary.meanAbsErrorGlobal') ?? meanAbs(rows.map((r) => num(r, 'errorGlobal')));
  const mw = num(j, 'summary.meanAbsErrorPerWorkload') ?? meanAbs(rows.map((r) => num(r, 'errorPerWorkload')));
  return {
    date: str(j, 'generatedAt', 'date'),
    headline:
      `global hostFactor ${f(gf, 3)}` +
      (num(j, 'geoMeanFactor') !== undefined ? ` (geomean ${f(num(j, 'geoMeanFactor'), 3)})` : '') +
      `; mean abs error ${pct(mg, 1)} with it, ${pct(mw, 1)} with per-workload factors (max ${pct(num(j, 'summary.maxAbsErrorGlobal'), 1)} / ${pct(num(j, 'summary.maxAbsErrorPerWorkload'), 1)}); ${rows.length} regions`,
    status: 'n/a (measurement)',
    tables,
    notes: num(j, 'hostFreqHz') ? [`host ${f(num(j, 'hostFreqHz')! / 1e9, 2)} GHz; error = (host cycles × factor − o3 cycles) / o3 cycles`] : [],
  };
};

/** Any array of objects: its scalar fields as columns (at most 12). */
function genericTable(title: string, rows: Json[]): Table {
  const objs = rows.filter(isObj);
  const keys: string[] = [];
  for (const o of objs) {
    for (const [k, v] of Object.entries(o)) {
      if (keys.length < 12 && !keys.includes(k) && (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean')) keys.push(k);
    }
  }
  return {
    title,
    headers: keys.length ? keys : ['(no scalar fields)'],
    rows: objs.map((o) =>
      keys.map((k) => {
        const v = o[k];
        return typeof v === 'number' ? (Number.isInteger(v) ? int(v) : v.toPrecision(4)) : v === undefined ? '' : String(v).slice(0, 60);
      }),
    ),
  };
}

const SUMMARIZERS: Record<(typeof FILES)[number], { title: string; command: string; fn: Summarizer }> = {
  kvm: { title: 'KVM vs native', command: 'node dist/bench/run.js', fn: kvm },
  atomic: { title: 'Atomic CPU speed', command: 'node dist/bench/speed.js --cpu=atomic', fn: speed('atomic') },
  o3: { title: 'O3 CPU speed', command: 'node dist/bench/speed.js --cpu=o3', fn: speed('o3') },
  switch: { title: 'Switch latency', command: 'node dist/bench/switch.js', fn: switchLatency },
  checkpoint: { title: 'Checkpoint throughput', command: 'node dist/bench/checkpoint.js', fn: checkpoint },
  sampling: { title: 'Sampling speed and error', command: 'node dist/bench/sampling.js', fn: sampling },
  scaling: { title: 'Host-to-guest cycle scaling', command: 'node dist/bench/scaling.js', fn: scaling },
};

export type SectionResult = (Section & { state: 'ok' }) | { state: 'not run' | 'unreadable' | 'error'; title: string; file: string; command: string; message: string };

/** Summarizes one result file; never throws. */
export function summarizeFile(resultsDir: string, name: (typeof FILES)[number]): SectionResult {
  const s = SUMMARIZERS[name];
  const file = `${name}.json`;
  const full = path.join(resultsDir, file);
  if (!existsSync(full)) return { state: 'not run', title: s.title, file, command: s.command, message: `not run (no bench/results/${file}; written by \`${s.command}\`)` };
  let j: Json;
  try {
    j = JSON.parse(readFileSync(full, 'utf8'));
  } catch (e) {
    return { state: 'unreadable', title: s.title, file, command: s.command, message: `unreadable: ${e instanceof Error ? e.message : String(e)}` };
  }
  try {
    const out = s.fn(j);
    return { state: 'ok', title: s.title, file, ...out, date: out.date ?? statSync(full).mtime.toISOString() };
  } catch (e) {
    return { state: 'error', title: s.title, file, command: s.command, message: `could not summarize (unexpected shape): ${e instanceof Error ? e.message : String(e)}` };
  }
}

function mdCell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** The whole SUMMARY.md. */
export function renderSummary(resultsDir: string, now = new Date()): string {
  const sections = FILES.map((n) => summarizeFile(resultsDir, n));
  const others = existsSync(resultsDir)
    ? readdirSync(resultsDir)
        .filter((f) => f.endsWith('.json') && !FILES.includes(f.slice(0, -5) as (typeof FILES)[number]))
        .sort()
    : [];
  const out: string[] = [
    '# switchsim benchmark summary',
    '',
    `Written by \`node dist/bench/summary.js\` (the last step of \`npm run bench\`) at ${now.toISOString()} from bench/results/*.json. ` +
      'Each section gives the key figures of one benchmark; the full tables are in the benchmark\'s own .md and raw data in its .json.',
    '',
    '| benchmark | result | status | key figures | measured at |',
    '| :--- | :--- | :--- | :--- | :--- |',
    ...sections.map((s) =>
      s.state === 'ok'
        ? `| ${mdCell(s.title)} | ${s.file} | ${s.status} | ${mdCell(s.headline)} | ${s.date ?? NA} |`
        : `| ${mdCell(s.title)} | ${s.file} | ${s.state} | ${mdCell(s.message)} | |`,
    ),
    '',
  ];
  for (const s of sections) {
    out.push(`## ${s.title}`, '');
    if (s.state !== 'ok') {
      out.push(s.message, '');
      continue;
    }
    out.push(`From \`bench/results/${s.file}\`${s.date ? `, measured ${s.date}` : ''}. **${s.status}**: ${s.headline}.`, '');
    for (const t of s.tables) out.push(renderMarkdown(t).replace(/^### /, '#### '));
    for (const n of s.notes) out.push(`- ${n}`);
    if (s.notes.length) out.push('');
  }
  if (others.length) out.push('## Other result files', '', ...others.map((f) => `- bench/results/${f} (not summarized)`), '');
  return out.join('\n').replace(/\n{3,}/g, '\n\n');
}

function main(): void {
  const argv = process.argv.slice(2);
  const opt = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
  const resultsDir = path.resolve(opt('--results') ?? path.join(root, 'bench/results'));
  const outFile = path.resolve(opt('--out') ?? path.join(resultsDir, 'SUMMARY.md'));
  const md = renderSummary(resultsDir);
  mkdirSync(path.dirname(outFile), { recursive: true });
  writeFileAtomic(outFile, md);
  process.stdout.write(`\n${md}\nwrote ${path.relative(process.cwd(), outFile) || outFile}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) main();
