/**
 * `switchsim sample`: runs the study (sampler.ts) with a progress bar on stderr (cli-progress;
 * a line per sample instead when stderr is not a terminal; nothing with -q), prints the summary
 * on stderr (stdout is the guest's) and writes samples.csv, samples.json, stats.txt/stats.json
 * and report.html into --out.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { ConfigError } from '../errors.js';
import path from 'node:path';
import cliProgress from 'cli-progress';
import type { ParsedSample } from '../cliArgs.js';
import { formatFaultReport } from '../guest/faults.js';
import { writeReport } from '../report/html.js';
import { writeStats } from '../stats.js';
import { writeFileAtomic } from '../util/atomicWrite.js';
import { runSampling, type SampleRunResult } from './sampler.js';
import { samplesCsv, toJson } from './stats.js';
import type { Estimate, SampleRecord, SamplingResult, SamplingSummary, ScalingRow, ScalingTable } from './types.js';

export interface SampleFiles {
  csv: string;
  json: string;
  statsTxt: string;
  statsJson: string;
  report: string;
}

/** Writes every output of a study into `dir`. */
export function writeSamplingOutputs(dir: string, r: SampleRunResult): SampleFiles {
  mkdirSync(dir, { recursive: true });
  const csv = path.join(dir, 'samples.csv');
  const json = path.join(dir, 'samples.json');
  writeFileAtomic(csv, samplesCsv(r.result.samples));
  writeFileAtomic(json, toJson(r.result));
  writeStats(dir, r.stats);
  // report.html reads the same data as samples.json (non-finite numbers as null there too).
  const report = writeReport(dir, JSON.parse(toJson(r.result)) as SamplingResult);
  return { csv, json, statsTxt: path.join(dir, 'stats.txt'), statsJson: path.join(dir, 'stats.json'), report };
}

/** Reads a ScalingTable (bench/scaling.ts output), checking what the report and the estimate use. */
export function loadScalingTable(file: string): ScalingTable & { perWorkloadFactor?: Record<string, number> } {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ConfigError('--scaling', `cannot read ${file}: ${(e as Error).message}`);
  }
  const t = v as Partial<ScalingTable> & { perWorkloadFactor?: unknown };
  const num = (x: unknown) => typeof x === 'number' && Number.isFinite(x);
  if (typeof v !== 'object' || v === null || !num(t.hostFreqHz) || !num(t.globalFactor) || !(t.globalFactor! > 0) || !Array.isArray(t.rows)) {
    throw new ConfigError('--scaling', `${file} is not a cycle-scaling table (hostFreqHz, globalFactor > 0, rows)`);
  }
  const fields = ['workload', 'region', 'insts', 'hostSeconds', 'hostCycles', 'hostCpi', 'o3Cycles', 'o3Cpi', 'hostFactor', 'errorGlobal', 'errorPerWorkload'] as const;
  t.rows.forEach((r, i) => {
    for (const f of fields) {
      const x = (r as unknown as Record<string, unknown>)[f];
      if (f === 'workload' || f === 'region' ? typeof x !== 'string' : typeof x !== 'number') {
        throw new ConfigError('--scaling', `${file}: rows[${i}].${f} is missing or of the wrong type`);
      }
    }
  });
  const per = t.perWorkloadFactor;
  const perWorkloadFactor =
    typeof per === 'object' && per !== null && Object.values(per).every((x) => num(x) && (x as number) > 0) ? (per as Record<string, number>) : undefined;
  return {
    hostFreqHz: t.hostFreqHz!,
    globalFactor: t.globalFactor!,
    rows: t.rows.map((r) => Object.fromEntries(fields.map((f) => [f, r[f]])) as unknown as ScalingRow),
    ...(perWorkloadFactor ? { perWorkloadFactor } : {}),
  };
}

function fmt(x: number, digits = 3): string {
  return Number.isFinite(x) ? x.toFixed(digits) : 'n/a';
}

function pct(x: number): string {
  return Number.isFinite(x) ? `${(x * 100).toFixed(2)}%` : 'n/a';
}

function fmtEstimate(name: string, e: Estimate): string {
  return `${name} ${fmt(e.mean, 4)} ± ${fmt(e.halfWidth, 4)} (${fmt(e.confidence * 100, 1)}% CI [${fmt(e.low, 4)}, ${fmt(e.high, 4)}], relative error ${pct(e.relativeError)}; stdDev ${fmt(e.stdDev, 4)}, CV ${pct(e.cv)})`;
}

function sampleLine(s: SampleRecord, sum: SamplingSummary | null): string {
  const k = s.keyStats;
  return (
    `sample ${String(s.index + 1).padStart(3)}: IPC ${fmt(s.ipc)} CPI ${fmt(s.cpi)}` +
    ` L1D miss ${k.l1dMissRate !== undefined ? pct(k.l1dMissRate) : 'n/a'} br-mispred/kinst ${fmt(k.branchMispredictsPki ?? NaN, 2)}` +
    (sum ? ` | mean IPC ${fmt(sum.ipc.mean)} ± ${fmt(sum.ipc.halfWidth)}` : '')
  );
}

export async function runSampleCommand(p: ParsedSample): Promise<number> {
  const quiet = p.quiet;
  const info = (m: string) => {
    if (!quiet) process.stderr.write(`switchsim: ${m}\n`);
  };
  const useBar = !quiet && process.stderr.isTTY === true;
  let bar: cliProgress.SingleBar | null = null;
  let barTotal = p.samples ?? p.minSamples;
  const startBar = () => {
    if (!useBar || bar) return;
    bar = new cliProgress.SingleBar(
      {
        stream: process.stderr,
        format: 'sampling [{bar}] {value}/{total} samples | IPC {ipc} ± {ci} ({rel}) | {duration_formatted}',
        hideCursor: true,
        clearOnComplete: true,
        etaBuffer: 8,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(barTotal, 0, { ipc: 'n/a', ci: 'n/a', rel: 'n/a' });
  };
  const o = p.options;
  const scaling = p.scaling ? loadScalingTable(p.scaling) : undefined;
  if (scaling && o.hostFactor === undefined) {
    const own = scaling.perWorkloadFactor?.[path.basename(o.program)];
    o.hostFactor = own ?? scaling.globalFactor;
    info(`host factor ${o.hostFactor.toFixed(4)} from ${p.scaling} (${own !== undefined ? `calibrated for ${path.basename(o.program)}` : 'the global factor: this program is not in the table'})`);
  }
  startBar();
  let r: SampleRunResult;
  try {
    r = await runSampling({
      program: o.program,
      args: o.args,
      ...(o.env !== undefined ? { env: o.env } : {}),
      ...(o.seed !== undefined ? { guestSeed: o.seed } : {}),
      ...(o.glibcBaseline !== undefined ? { glibcBaseline: o.glibcBaseline } : {}),
      ...(o.memSize !== undefined ? { memSize: o.memSize } : {}),
      allowRead: o.allowRead ?? [],
      ...(o.hostFreqHz !== undefined ? { hostFreqHz: o.hostFreqHz } : {}),
      ...(o.hostFactor !== undefined ? { hostFactor: o.hostFactor } : {}),
      ...(o.o3Config !== undefined ? { o3Config: o.o3Config } : {}),
      ...(o.maxSeconds ? { maxSeconds: o.maxSeconds } : {}),
      interval: p.interval,
      ...(p.functionalWarmInsts !== null ? { functionalWarmInsts: p.functionalWarmInsts } : {}),
      ...(p.branchWarmInsts !== null ? { branchWarmInsts: p.branchWarmInsts } : {}),
      ...(p.warming !== null ? { warming: p.warming } : {}),
      ...(p.detailedWarmInsts !== null ? { detailedWarmInsts: p.detailedWarmInsts } : {}),
      measureInsts: p.measureInsts,
      samples: p.samples,
      targetError: p.targetError,
      confidence: p.confidence,
      minSamples: p.minSamples,
      seed: p.seed,
      ...(p.fastForward ? { fastForward: p.fastForward } : {}),
      hostRate: p.hostRate,
      ...(p.parallel !== undefined ? { parallel: p.parallel } : {}),
      onInfo: info,
      onWarning: (m) => {
        process.stderr.write(`${bar ? '\n' : ''}switchsim: warning: ${m}\n`);
      },
      onSample: (rec, sum) => {
        const b = bar as cliProgress.SingleBar | null;
        if (b) {
          if (p.samples === null) {
            const want = Math.max(p.minSamples, Number.isFinite(sum.samplesNeeded) ? sum.samplesNeeded : 0, sum.samples);
            if (want !== barTotal) {
              barTotal = want;
              b.setTotal(want);
            }
          }
          b.update(sum.samples, { ipc: fmt(sum.ipc.mean), ci: fmt(sum.ipc.halfWidth), rel: pct(sum.ipc.relativeError) });
        } else info(sampleLine(rec, sum));
      },
    });
  } finally {
    (bar as cliProgress.SingleBar | null)?.stop();
  }
  for (const n of r.notes) info(n);
  const res = r.result;
  const s = res.summary;
  const c = res.config;
  if (!useBar) {
    // Lines were printed as samples came.
  } else if (!quiet) {
    const max = 20;
    for (const smp of res.samples.slice(0, max)) info(sampleLine(smp, null));
    if (res.samples.length > max) info(`… ${res.samples.length - max} more samples in samples.csv`);
  }
  info(`${s.samples} samples of ${c.measureInsts} instructions (functional warming ${c.functionalWarmInsts}, detailed warm-up ${c.detailedWarmInsts})`);
  if (s.samples > 0) {
    info(fmtEstimate('IPC', s.ipc));
    info(fmtEstimate('CPI', s.cpi));
  }
  if (s.samples >= 2) {
    info(`samples needed for ±${pct(s.targetError)} at ${fmt(c.confidence * 100, 1)}% confidence with CV ${pct(s.ipc.cv)}: ${Number.isFinite(s.samplesNeeded) ? s.samplesNeeded : 'n/a'} (n ≥ (t·cv/ε)²)`);
  }
  if (c.samples === null) {
    info(
      r.reachedTarget
        ? `target reached: relative error ${pct(s.ipc.relativeError)} ≤ ${pct(c.targetError)} after ${s.samples} samples`
        : `the program ended before the target: relative error reached ${pct(s.ipc.relativeError)} with ${s.samples} samples (target ${pct(c.targetError)})`,
    );
  } else if (!r.reachedTarget) {
    info(`the program ended after ${s.samples} of ${c.samples} samples`);
  }
  if (r.partialDropped) info('the program ended inside a sample: that partial sample was dropped');
  const w = s.wholeProgram;
  info(
    `whole program: ${w.cycles.toExponential(4)} cycles [${w.low.toExponential(4)}, ${w.high.toExponential(4)}] ` +
      (c.fastForwardModel === 'atomic'
        ? `(${w.jsInsts} instructions, all on the JS models, × mean CPI)`
        : `(KVM ${w.kvmHostCycles.toExponential(3)} host cycles × ${w.hostFactor} + ${w.jsInsts} JS-model instructions × mean CPI)`),
  );
  const h = s.hostSeconds;
  info(
    `host time: ${h.total.toFixed(2)} s (fast-forward ${h.kvm.toFixed(2)}, warming ${h.warming.toFixed(2)}, detailed ${h.detailed.toFixed(2)}` +
      (c.parallel ? '; the samples ran alongside the fast-forward in a worker)' : `, other ${h.other.toFixed(2)})`),
  );
  if (p.validate && r.result.samples.length > 0) {
    info('validating: the whole program on o3 (guest output captured)…');
    const { runFullO3, validationOf } = await import('./validate.js');
    const full = await runFullO3({
      program: o.program,
      args: o.args,
      ...(o.env !== undefined ? { env: o.env } : {}),
      ...(o.seed !== undefined ? { guestSeed: o.seed } : {}),
      ...(o.glibcBaseline !== undefined ? { glibcBaseline: o.glibcBaseline } : {}),
      ...(o.memSize !== undefined ? { memSize: o.memSize } : {}),
      ...(o.hostFreqHz !== undefined ? { hostFreqHz: o.hostFreqHz } : {}),
      ...(o.o3Config !== undefined ? { o3Config: o.o3Config } : {}),
      allowRead: o.allowRead ?? [],
    });
    const v = validationOf(r.result, full, r.wallSeconds);
    r.result.validation = v;
    info(`validation: full o3 IPC ${fmt(v.fullIpc, 4)} (${full.insts} instructions, ${v.fullWallSeconds.toFixed(2)} s) vs sampled ${fmt(s.ipc.mean, 4)}: error ${pct(v.error)}, wall-time speedup ${v.speedup.toFixed(1)}x`);
  }
  if (scaling) r.result.scaling = scaling;
  const files = writeSamplingOutputs(p.out, r);
  info(`wrote ${files.csv}, ${files.json}, ${files.statsTxt}, ${files.statsJson}, ${files.report}`);
  if (r.end.kind === 'faulted') process.stderr.write(`switchsim: ${formatFaultReport(r.end.report)}\n`);
  if (r.end.kind === 'timeLimit') process.stderr.write(`switchsim: stopped: --max-seconds ${r.end.seconds} reached after ${r.wallSeconds.toFixed(2)} s; the guest had not exited\n`);
  return r.exitCode;
}
