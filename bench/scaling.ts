/**
 * `npm run bench:scaling` (issue 6): how well "guest cycles = host cycles × hostFactor" predicts
 * the detailed model. For each compute workload and region length (the workload's m5 region of
 * interest at a few input sizes):
 *   - exact instructions of the region: atomic CPU, the dump at m5 dump_stats
 *     (system.atomic_cpu.committedInsts between reset_stats and dump_stats);
 *   - KVM host time of the same region: the dump's system.kvm_cpu.hostRunSeconds (KvmModel
 *     subtracts the stats taken at reset_stats), median of N runs, with the spread;
 *   - o3 cycles of the region with configs/o3-host.json (the dump's system.o3_cpu.numCycles).
 * Then host CPI vs o3 CPI, per-region hostFactor, a global factor (least squares through the
 * origin; the geometric mean of the ratios beside it), per-workload factors, and the error of
 * guest-cycle estimates by region length (bench/lib/scaling.ts).
 *
 * Every model runs the whole program (setup included) so caches and predictors are warm at the
 * region as on the real machine; atomic and o3 stop at m5 work_end, KVM runs to the end and its
 * output is compared with the native run.
 *
 * Environment (all optional):
 *   SCALING_SIZES=small,medium,large   which sizes (default all three)
 *   SCALING_WORKLOADS=checksum,qsort   which workloads (default all seven)
 *   SCALING_REPEATS=5                  KVM runs per region (median; at least 3 recommended)
 *   SCALING_CONFIG=file.json           sizes: { "<workload>": { "<size>": [args...] } }, merged over the defaults
 *   SCALING_O3_CONFIG=configs/o3-host.json
 *   SCALING_MODELS=atomic,kvm,o3       (calibration: e.g. atomic only, to see region lengths)
 *   SCALING_OVERHEAD=0                 skip measuring the KVM per-region overhead (an empty region: checksum 1)
 *   SCALING_OUT=bench/results/scaling  output path prefix (.json, .md)
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { drive, type DriveResult } from '../src/switch/driver.js';
import { System } from '../src/switch/system.js';
import type { CpuModelName } from '../src/switch/token.js';
import type { Stat } from '../src/stats.js';
import { detectHostFrequency } from '../src/kvm/hostFreq.js';
import { checkBuilt, checkKvm, loadWorkloads, RESULTS_DIR, ROOT, workloadPath } from './lib/env.js';
import { analyzeScaling, type ScalingAnalysis, type ScalingMeasurement } from './lib/scaling.js';
import { renderMarkdown, renderText, type Table } from './lib/table.js';
import { fmt, int, max, median, min, progress, spreadPct } from './lib/util.js';
import { writeFileAtomic } from '../src/util/atomicWrite.js';

type Size = 'small' | 'medium' | 'large';
const ALL_SIZES: Size[] = ['small', 'medium', 'large'];

/**
 * Region sizes: small ≈ 0.3–0.6 M, medium ≈ 3–5 M, large ≈ 20–25 M instructions in the region
 * (o3 runs ~1–1.5 M instructions/s, plus each program's setup before the region).
 */
const DEFAULT_SIZES: Record<string, Record<Size, string[]>> = {
  checksum: { small: ['30000'], medium: ['300000'], large: ['1500000'] },
  qsort: { small: ['4000'], medium: ['30000'], large: ['150000'] },
  matmul_int: { small: ['40'], medium: ['88'], large: ['150'] },
  matmul_fp: { small: ['40'], medium: ['88'], large: ['150'] },
  ptrchase: { small: ['4M', '50000'], medium: ['4M', '500000'], large: ['4M', '2400000'] },
  branchy: { small: ['2000', '8000'], medium: ['20000', '80000'], large: ['90000', '360000'] },
  sha256: { small: ['6K'], medium: ['56K'], large: ['256K'] },
};

function envList(name: string): string[] | null {
  const v = process.env[name];
  return v ? v.split(',').map((s) => s.trim()).filter(Boolean) : null;
}

function statMap(stats: readonly Stat[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const s of stats) if (typeof s.value === 'number') m.set(s.name, s.value);
  return m;
}

function need(m: Map<string, number>, name: string, what: string): number {
  const v = m.get(name);
  if (v === undefined) throw new Error(`${what}: stat ${name} missing from the m5 dump`);
  return v;
}

interface RoiRun {
  dump: Map<string, number>;
  drive: DriveResult;
  stdout: string;
  warnings: string[];
}

/** One run of `exe args --m5=inst` on `model`; the single m5 dump_stats dump. */
async function roiRun(model: CpuModelName, exe: string, args: string[], o3Config: string, hz: number): Promise<RoiRun> {
  const warnings: string[] = [];
  const system = await System.create({
    models: [model],
    program: exe,
    args: [...args, '--m5=inst'],
    env: ['LANG=C'],
    capture: true,
    memSize: 512 << 20,
    hostFreqHz: hz,
    ...(model === 'o3' ? { o3Config } : {}),
    onWarning: (w) => warnings.push(w),
    onInfo: () => {},
  });
  try {
    // atomic and o3 stop at m5 work_end (the checks after the region cost simulation time);
    // KVM runs to the end so its output can be compared with the native run.
    const d = await drive(system, { sequence: [model], ...(model === 'kvm' ? {} : { roi: { detailed: model, after: 'exit' as const } }) });
    if (d.dumps.length !== 1) throw new Error(`${path.basename(exe)} ${args.join(' ')} on ${model}: expected one m5 dump, got ${d.dumps.length} (end: ${d.end.kind})`);
    const want = model === 'kvm' ? 'exited' : 'roiDone';
    if (d.end.kind !== want) throw new Error(`${path.basename(exe)} on ${model}: ended with ${JSON.stringify(d.end)}`);
    return { dump: statMap(d.dumps[0]!), drive: d, stdout: system.output().stdout.toString(), warnings };
  } finally {
    await system.close();
  }
}

interface RowExtra {
  args: string[];
  size: Size;
  /** KVM host seconds of every run (the row's hostSeconds is their median). */
  hostSecondsRuns: number[];
  hostSecondsSpreadPct: number;
  /** KVM exits and syscalls inside the region (largest over the runs; the dump_stats m5op itself is one exit). */
  kvmExitsInRoi: Record<string, number>;
  kvmSyscallsInRoi: number;
  kvmRunsInRoi: number;
  /** Instructions o3 committed in the region (check: = atomic's). */
  o3Insts: number;
  /** Host seconds of the o3 run (whole program up to work_end). */
  o3HostSeconds: number;
  kvmOutputMatchesNative: boolean;
}

async function main(): Promise<void> {
  const hz = detectHostFrequency().hz;
  const sizes = (envList('SCALING_SIZES') ?? ALL_SIZES) as Size[];
  for (const s of sizes) if (!ALL_SIZES.includes(s)) throw new Error(`SCALING_SIZES: unknown size ${s} (small, medium, large)`);
  const table: Record<string, Partial<Record<Size, string[]>>> = structuredClone(DEFAULT_SIZES);
  if (process.env.SCALING_CONFIG) {
    const extra = JSON.parse(readFileSync(process.env.SCALING_CONFIG, 'utf8')) as Record<string, Partial<Record<Size, string[]>>>;
    for (const [w, s] of Object.entries(extra)) table[w] = { ...(table[w] ?? {}), ...s };
  }
  const names = envList('SCALING_WORKLOADS') ?? Object.keys(DEFAULT_SIZES);
  const repeats = Math.max(1, Number(process.env.SCALING_REPEATS ?? 5));
  const models = (envList('SCALING_MODELS') ?? ['atomic', 'kvm', 'o3']) as CpuModelName[];
  const o3Config = path.resolve(ROOT, process.env.SCALING_O3_CONFIG ?? 'configs/o3-host.json');
  const outPrefix = path.resolve(ROOT, process.env.SCALING_OUT ?? path.join(RESULTS_DIR, 'scaling'));
  const known = new Set(loadWorkloads().map((w) => w.name));
  for (const n of names) if (!known.has(n) || !table[n]) throw new Error(`unknown workload ${n}`);
  checkBuilt(names);
  if (models.includes('kvm')) checkKvm();
  const t0 = performance.now();

  // The fixed cost of a region on KVM: `checksum 1` has a region of a few dozen instructions, so
  // its host time is the m5op exits (#UD, exception stub, exit to the worker) and the VM entry.
  let overhead: { seconds: number; runs: number[]; insts: number } | null = null;
  if (models.includes('kvm') && process.env.SCALING_OVERHEAD !== '0') {
    const exe = workloadPath('checksum');
    const runs: number[] = [];
    for (let i = 0; i < Math.max(repeats, 9); i++) runs.push(need((await roiRun('kvm', exe, ['1'], o3Config, hz)).dump, 'system.kvm_cpu.hostRunSeconds', 'overhead'));
    const insts = models.includes('atomic') ? need((await roiRun('atomic', exe, ['1'], o3Config, hz)).dump, 'system.atomic_cpu.committedInsts', 'overhead') : NaN;
    overhead = { seconds: median(runs), runs, insts };
    progress(`KVM per-region overhead (checksum 1: ${insts} instructions in the region): median ${fmt(overhead.seconds * 1e6, 1)} µs (${runs.map((x) => fmt(x * 1e6, 1)).join(', ')})`);
  }

  const measurements: ScalingMeasurement[] = [];
  const extras: RowExtra[] = [];
  for (const name of names) {
    const exe = workloadPath(name);
    for (const size of sizes) {
      const args = table[name]![size];
      if (!args) continue;
      const label = `${name} ${args.join(' ')} (${size})`;
      let insts = NaN;
      if (models.includes('atomic')) {
        const a = await roiRun('atomic', exe, args, o3Config, hz);
        insts = need(a.dump, 'system.atomic_cpu.committedInsts', label);
        progress(`${label}: atomic ${int(insts)} instructions in the region`);
      }
      const hostRuns: number[] = [];
      const exits: Record<string, number> = {};
      let syscalls = 0;
      let kvmRuns = 0;
      let outputOk = true;
      if (models.includes('kvm')) {
        const native = spawnSync(exe, args, { env: { LANG: 'C' } });
        for (let i = 0; i < repeats; i++) {
          const k = await roiRun('kvm', exe, args, o3Config, hz);
          hostRuns.push(need(k.dump, 'system.kvm_cpu.hostRunSeconds', label));
          syscalls = Math.max(syscalls, need(k.dump, 'system.kvm_cpu.syscalls', label));
          kvmRuns = Math.max(kvmRuns, need(k.dump, 'system.kvm_cpu.kvmRuns', label));
          for (const [n, v] of k.dump) {
            if (n.startsWith('system.kvm_cpu.exits::')) {
              const reason = n.slice('system.kvm_cpu.exits::'.length);
              exits[reason] = Math.max(exits[reason] ?? 0, v);
            }
          }
          outputOk &&= native.status === 0 && k.stdout === native.stdout.toString();
        }
        progress(`${label}: kvm median ${fmt(median(hostRuns) * 1e3, 3)} ms (${hostRuns.map((s) => fmt(s * 1e3, 3)).join(', ')}), syscalls in region ${syscalls}, exits ${JSON.stringify(exits)}`);
      }
      let o3Cycles = NaN;
      let o3Insts = NaN;
      let o3Seconds = NaN;
      if (models.includes('o3')) {
        const t = performance.now();
        const o = await roiRun('o3', exe, args, o3Config, hz);
        o3Seconds = (performance.now() - t) / 1000;
        o3Cycles = need(o.dump, 'system.o3_cpu.numCycles', label);
        o3Insts = o.dump.get('system.o3_cpu.committedInsts') ?? o.dump.get('simInsts') ?? NaN;
        progress(`${label}: o3 ${int(o3Cycles)} cycles, ${int(o3Insts)} instructions (${fmt(o3Seconds, 1)} s)`);
      }
      measurements.push({ workload: name, region: `${size} (${args.join(' ')})`, insts, hostSeconds: median(hostRuns), o3Cycles });
      extras.push({
        args,
        size,
        hostSecondsRuns: hostRuns,
        hostSecondsSpreadPct: spreadPct(hostRuns),
        kvmExitsInRoi: exits,
        kvmSyscallsInRoi: syscalls,
        kvmRunsInRoi: kvmRuns,
        o3Insts,
        o3HostSeconds: o3Seconds,
        kvmOutputMatchesNative: outputOk,
      });
    }
  }
  const wall = (performance.now() - t0) / 1000;
  const a = analyzeScaling(measurements, hz);
  // The same with the per-region overhead subtracted from every region's host time.
  const corrected = overhead ? analyzeScaling(measurements.map((m) => ({ ...m, hostSeconds: Math.max(m.hostSeconds - overhead.seconds, 1e-9) })), hz) : null;
  const out = render(a, extras, { hz, repeats, o3Config, wall, models, overhead, corrected });
  process.stdout.write('\n' + out.text);
  mkdirSync(path.dirname(outPrefix), { recursive: true });
  const json = {
    generatedAt: new Date().toISOString(),
    ...a,
    rows: a.rows.map((r, i) => ({ ...r, ...extras[i]!, errorGeo: a.errorGeo[i]! })),
    method: {
      globalFactor: 'least squares through the origin on cycles: sum(hostCycles*o3Cycles) / sum(hostCycles^2)',
      geoMeanFactor: 'geometric mean of the per-row o3Cycles/hostCycles',
      perWorkloadFactor: "least squares through the origin over the workload's rows",
      error: '(hostCycles * factor - o3Cycles) / o3Cycles',
      hostCycles: 'median KVM hostRunSeconds of the region x hostFreqHz',
    },
    kvmRegionOverhead: overhead ? { seconds: overhead.seconds, runs: overhead.runs, regionInsts: overhead.insts, how: 'KVM hostRunSeconds of the region of `checksum 1` (a few dozen instructions), median' } : null,
    overheadCorrected: corrected
      ? {
          globalFactor: corrected.globalFactor,
          geoMeanFactor: corrected.geoMeanFactor,
          perWorkloadFactor: corrected.perWorkloadFactor,
          summary: corrected.summary,
          byLength: corrected.byLength,
          rows: corrected.rows.map((r) => ({ workload: r.workload, region: r.region, hostCycles: r.hostCycles, hostCpi: r.hostCpi, hostFactor: r.hostFactor, errorGlobal: r.errorGlobal, errorPerWorkload: r.errorPerWorkload })),
        }
      : null,
    config: { repeats, o3Config: path.relative(ROOT, o3Config), models, sizes, wallSeconds: wall, loadAverage: os.loadavg(), cpus: os.cpus().length },
  };
  writeFileAtomic(`${outPrefix}.json`, JSON.stringify(json, null, 2) + '\n');
  writeFileAtomic(`${outPrefix}.md`, out.markdown);
  process.stdout.write(`wrote ${path.relative(ROOT, outPrefix)}.json and .md (${fmt(wall, 0)} s)\n`);
}

function pct(x: number, digits = 1): string {
  return Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${fmt(x * 100, digits)}%` : 'n/a';
}

/** A magnitude (mean or max |error|): no sign. */
function pctAbs(x: number, digits = 1): string {
  return Number.isFinite(x) ? `${fmt(x * 100, digits)}%` : 'n/a';
}

interface RenderContext {
  hz: number;
  repeats: number;
  o3Config: string;
  wall: number;
  models: string[];
  overhead: { seconds: number; runs: number[]; insts: number } | null;
  corrected: ScalingAnalysis | null;
}

function render(a: ScalingAnalysis, extras: RowExtra[], ctx: RenderContext): { text: string; markdown: string } {
  const rowsTable: Table = {
    title: `Host CPI (KVM, real machine) vs o3 CPI (${path.basename(ctx.o3Config)}) per region; host clock ${fmt(ctx.hz / 1e9, 2)} GHz`,
    headers: ['workload', 'region', 'insts', 'host ms (median)', 'spread', 'host cycles', 'host CPI', 'o3 cycles', 'o3 CPI', 'hostFactor', 'err global', 'err own'],
    align: ['l', 'l'],
    rows: a.rows.map((r, i) => {
      const x = extras[i]!;
      return [
        r.workload,
        r.region,
        int(r.insts),
        fmt(r.hostSeconds * 1e3, 3),
        `${fmt(x.hostSecondsSpreadPct, 1)}%`,
        int(r.hostCycles),
        fmt(r.hostCpi, 3),
        int(r.o3Cycles),
        fmt(r.o3Cpi, 3),
        fmt(r.hostFactor, 3),
        pct(r.errorGlobal),
        pct(r.errorPerWorkload),
      ];
    }),
    notes: [
      'insts: exact, atomic CPU, between m5 reset_stats and dump_stats. host ms: KVM hostRunSeconds of the same region, ' +
        `median of ${ctx.repeats} runs; spread = (max - min) / median. host cycles = host ms x host clock (nominal: no PMU here).`,
      'o3 cycles: the region on the o3 model (whole program on o3, so caches and predictors are warm at the region as on the real machine).',
      `hostFactor = o3 cycles / host cycles. err = (host cycles x factor - o3 cycles) / o3 cycles, with the global factor (${fmt(a.globalFactor, 4)}) and with the workload's own.`,
      `KVM exits inside the regions: ${describeExits(extras)}; syscalls inside the regions: ${max(extras.map((x) => x.kvmSyscallsInRoi))}.`,
      `KVM output = native output in every run: ${extras.every((x) => x.kvmOutputMatchesNative) ? 'yes' : 'NO'}; o3 instructions = atomic instructions (±2): ${a.rows.every((r, i) => Math.abs(extras[i]!.o3Insts - r.insts) <= 2) ? 'yes' : 'NO'}.`,
      `load average ${os.loadavg().map((x) => fmt(x, 2)).join(' ')} on ${os.cpus().length} CPUs (shared machine: host times are noisy); benchmark wall time ${fmt(ctx.wall, 0)} s.`,
    ],
  };
  const factors: Table = {
    title: 'hostFactor fits and guest-cycle estimate errors (|error| over the rows)',
    headers: ['factor', 'value', 'mean |err|', 'max |err|'],
    align: ['l', 'l'],
    rows: [
      ['global, least squares through the origin on cycles', fmt(a.globalFactor, 4), pctAbs(a.summary.meanAbsErrorGlobal), pctAbs(a.summary.maxAbsErrorGlobal)],
      ['global, geometric mean of the per-row ratios', fmt(a.geoMeanFactor, 4), pctAbs(a.summary.meanAbsErrorGeo), pctAbs(a.summary.maxAbsErrorGeo)],
      ["each workload's own (least squares)", '', pctAbs(a.summary.meanAbsErrorPerWorkload), pctAbs(a.summary.maxAbsErrorPerWorkload)],
      ...Object.entries(a.perWorkloadFactor).map(([w, f]) => {
        const errs = a.rows.filter((r) => r.workload === w).map((r) => Math.abs(r.errorPerWorkload));
        return [`  ${w}`, fmt(f, 4), pctAbs(errs.reduce((s, x) => s + x, 0) / errs.length), pctAbs(Math.max(...errs))];
      }),
    ],
    notes: ['Least squares through the origin weighs long regions most; the geometric mean weighs every region the same.'],
  };
  const lengths: Table = {
    title: 'Estimate error by region length (mean |error|)',
    headers: ['region instructions', 'rows', 'global (LSQ)', 'global (geomean)', 'own workload factor'],
    align: ['l'],
    rows: a.byLength.map((b) => [b.label, String(b.rows), pctAbs(b.meanAbsErrorGlobal), pctAbs(b.meanAbsErrorGeo), pctAbs(b.meanAbsErrorPerWorkload)]),
  };
  const spreads = extras.map((x) => x.hostSecondsSpreadPct).filter(Number.isFinite);
  lengths.notes = [`KVM host-time spread over the ${ctx.repeats} runs: median ${fmt(median(spreads), 1)}%, min ${fmt(min(spreads), 1)}%, max ${fmt(max(spreads), 1)}%.`];
  const tables = [rowsTable, factors, lengths];
  const c = ctx.corrected;
  if (c && ctx.overhead) {
    tables.push({
      title: `The same with the KVM per-region overhead (${fmt(ctx.overhead.seconds * 1e6, 1)} µs, median of ${ctx.overhead.runs.length} runs of checksum 1) subtracted from every region's host time`,
      headers: ['workload', 'region', 'host CPI', 'o3 CPI', 'hostFactor', 'err global', 'err own'],
      align: ['l', 'l'],
      rows: c.rows.map((r) => [r.workload, r.region, fmt(r.hostCpi, 3), fmt(r.o3Cpi, 3), fmt(r.hostFactor, 3), pct(r.errorGlobal), pct(r.errorPerWorkload)]),
      notes: [
        `global factor: least squares ${fmt(c.globalFactor, 4)} (mean |err| ${pctAbs(c.summary.meanAbsErrorGlobal)}, max ${pctAbs(c.summary.maxAbsErrorGlobal)}); ` +
          `geometric mean ${fmt(c.geoMeanFactor, 4)} (mean |err| ${pctAbs(c.summary.meanAbsErrorGeo)}); own workload factors: mean |err| ${pctAbs(c.summary.meanAbsErrorPerWorkload)}, max ${pctAbs(c.summary.maxAbsErrorPerWorkload)}.`,
        `The overhead region has ${int(ctx.overhead.insts)} instructions; the overhead is the m5op exit (#UD, exception stub, exit to the worker) and the VM entry after reset_stats.`,
      ],
    });
    tables.push({
      title: 'Estimate error by region length, overhead subtracted (mean |error|)',
      headers: ['region instructions', 'rows', 'global (LSQ)', 'global (geomean)', 'own workload factor'],
      align: ['l'],
      rows: c.byLength.map((b) => [b.label, String(b.rows), pctAbs(b.meanAbsErrorGlobal), pctAbs(b.meanAbsErrorGeo), pctAbs(b.meanAbsErrorPerWorkload)]),
    });
  }
  const text = tables.map(renderText).join('\n');
  const markdown = `## Host-to-guest cycle scaling (bench/scaling.ts)\n\nGenerated ${new Date().toISOString()}.\n\n` + tables.map(renderMarkdown).join('\n');
  return { text, markdown };
}

function describeExits(extras: RowExtra[]): string {
  const all: Record<string, number> = {};
  for (const x of extras) for (const [k, v] of Object.entries(x.kvmExitsInRoi)) all[k] = Math.max(all[k] ?? 0, v);
  const parts = Object.entries(all).map(([k, v]) => `${k} ≤ ${v}`);
  const runs = max(extras.map((x) => x.kvmRunsInRoi));
  return `${parts.length ? parts.join(', ') : 'none'} per region (KVM_RUN calls per region ≤ ${runs})`;
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
