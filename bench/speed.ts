/**
 * `npm run bench` parts 2 and 3: simulation speed of the JS CPU models, MIPS per workload.
 *   node dist/bench/speed.js --cpu=atomic   the functional core (target >= 30 MIPS, integer)
 *   node dist/bench/speed.js --cpu=o3       the detailed CPU, default config (target >= 1 MIPS)
 * Each workload runs in this process (`runProgram`, output captured and checked against the
 * native run), after one warm-up run at test size; best and median of N runs (atomic: N + 1,
 * with one run without block fusion between them for the fusion speed-up). Host cycles per
 * guest instruction = host frequency / guest instructions per second (no PMU here).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runProgram } from '../src/run.js';
import { BASELINE_CPUID } from '../src/detailed/cpuidTable.js';
import { detectHostFrequency } from '../src/kvm/hostFreq.js';
import { checkBuilt, loadWorkloads, RESULTS_DIR, ROOT, workloadPath } from './lib/env.js';
import { renderMarkdown, renderText, type Table } from './lib/table.js';
import { fmt, progress } from './lib/util.js';
import { writeFileAtomic } from '../src/util/atomicWrite.js';

type Model = 'atomic' | 'o3';

/** o3 sizes: 1–10 M guest instructions (the detailed model is ~30x slower). */
const O3_SIZES: Record<string, { args: string[]; integer: boolean }> = {
  checksum: { args: ['300000'], integer: true },
  qsort: { args: ['20000'], integer: true },
  matmul_int: { args: ['64'], integer: true },
  ptrchase: { args: ['1M', '200000'], integer: true },
  branchy: { args: ['10000', '40000'], integer: true },
  sha256: { args: ['64K'], integer: true },
  matmul_fp: { args: ['48'], integer: false },
};

/** atomic sizes: 20–90 M guest instructions, long enough for the JIT to settle. */
const SIZES: Record<string, { args: string[]; integer: boolean }> = {
  checksum: { args: ['3000000'], integer: true },
  qsort: { args: ['300000'], integer: true },
  matmul_int: { args: ['200'], integer: true },
  ptrchase: { args: ['4M', '4000000'], integer: true },
  branchy: { args: ['100000', '400000'], integer: true },
  sha256: { args: ['512K'], integer: true },
  matmul_fp: { args: ['160'], integer: false },
};

interface Row {
  name: string;
  args: string[];
  integer: boolean;
  instructions: number;
  seconds: number[];
  bestMips: number;
  medianMips: number;
  outputMatches: boolean;
  /** atomic: MIPS with block fusion off (one run, between the fused rounds). */
  unfusedMips?: number;
  /** atomic: one run keeping the memory timestamp record (sampling's fast-forward). */
  recordMips?: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const rounds = Number(process.argv.find((a) => a.startsWith('--rounds='))?.slice(9) ?? 3);
  const model: Model = process.argv.includes('--cpu=o3') ? 'o3' : 'atomic';
  const sizes = model === 'o3' ? O3_SIZES : SIZES;
  const target = model === 'o3' ? 1 : 30;
  const all = loadWorkloads();
  const names = Object.keys(sizes).filter((n) => all.some((w) => w.name === n));
  checkBuilt(names);
  const hz = detectHostFrequency().hz;
  const rows: Row[] = [];
  for (const name of names) {
    const { args, integer } = sizes[name]!;
    const exe = workloadPath(name);
    const native = spawnSync(exe, args, { env: { LANG: 'C' } }).stdout.toString();
    const w = all.find((x) => x.name === name)!;
    const run = (fuseAfter?: number, recordTimestamps = false) =>
      runProgram({
        cpu: model, program: exe, args, env: ['LANG=C'], capture: true, memSize: 512 << 20, cpuid: BASELINE_CPUID,
        ...(fuseAfter !== undefined ? { fuseAfter } : {}),
        ...(recordTimestamps ? { recordTimestamps } : {}),
      });
    progress(`[${model}] ${name} ${args.join(' ')}: warm-up`);
    await runProgram({
      cpu: model, program: exe, args: (w as { testArgs?: string[] }).testArgs ?? [], env: ['LANG=C'], capture: true, memSize: 512 << 20, cpuid: BASELINE_CPUID,
    });
    const seconds: number[] = [];
    let instructions = 0;
    let outputMatches = true;
    for (let i = 0; i < rounds; i++) {
      const r = await run();
      if (r.stats.model !== model) throw new Error(`expected ${model} stats`);
      instructions = r.stats.instructions;
      seconds.push(r.stats.hostSeconds);
      outputMatches &&= r.stdout.toString() === native;
      progress(`[${model}] ${name}: ${fmt(instructions / r.stats.hostSeconds / 1e6, 2)} MIPS`);
    }
    const mips = seconds.map((s) => instructions / s / 1e6);
    const row: Row = { name, args, integer, instructions, seconds, bestMips: Math.max(...mips), medianMips: median(mips), outputMatches };
    if (model === 'atomic') {
      // The same run without block fusion, measured here between fused rounds (a noisy host
      // moves both alike), so the gain is a ratio from one process.
      const r = await run(Infinity);
      if (r.stats.model !== 'atomic') throw new Error('expected atomic stats');
      outputMatches &&= r.stdout.toString() === native;
      row.outputMatches = outputMatches;
      row.unfusedMips = r.stats.instructions / r.stats.hostSeconds / 1e6;
      progress(`[${model}] ${name}: ${fmt(row.unfusedMips, 2)} MIPS unfused`);
      const rec = await run(undefined, true);
      if (rec.stats.model !== 'atomic') throw new Error('expected atomic stats');
      outputMatches &&= rec.stdout.toString() === native;
      row.outputMatches = outputMatches;
      row.recordMips = rec.stats.instructions / rec.stats.hostSeconds / 1e6;
      progress(`[${model}] ${name}: ${fmt(row.recordMips, 2)} MIPS with the memory timestamp record`);
      const again = await run();
      if (again.stats.model !== 'atomic') throw new Error('expected atomic stats');
      row.seconds.push(again.stats.hostSeconds);
      const all = row.seconds.map((x) => instructions / x / 1e6);
      row.bestMips = Math.max(...all);
      row.medianMips = median(all);
    }
    rows.push(row);
  }
  const intRows = rows.filter((r) => r.integer);
  const geo = (xs: number[]) => Math.exp(xs.reduce((a, x) => a + Math.log(x), 0) / xs.length);
  const table: Table = {
    title: `${model === 'o3' ? 'O3 (detailed, default config)' : 'Atomic'} CPU speed (in-process, ${rounds} runs after a warm-up; guest clock ${fmt(hz / 1e9, 2)} GHz)`,
    headers: [
      'workload', 'args', 'guest insts', 'median MIPS', 'best MIPS', 'host cycles/inst',
      ...(model === 'atomic' ? ['unfused MIPS', 'fusion speed-up', 'record MIPS', 'record cost'] : []), 'output = native', `>= ${target} MIPS`,
    ],
    align: ['l', 'l'],
    rows: [
      ...rows.map((r) => [
        r.name,
        r.args.join(' '),
        r.instructions.toLocaleString('en-US'),
        fmt(r.medianMips, 2),
        fmt(r.bestMips, 2),
        fmt(hz / (r.medianMips * 1e6), 0),
        ...(model === 'atomic'
          ? [fmt(r.unfusedMips ?? NaN, 2), `${fmt(r.medianMips / (r.unfusedMips ?? NaN), 2)}x`, fmt(r.recordMips ?? NaN, 2), `${fmt((r.medianMips / (r.recordMips ?? NaN) - 1) * 100, 0)}%`]
          : []),
        r.outputMatches ? 'yes' : 'NO',
        model === 'o3' || r.integer ? (r.medianMips >= target ? 'ok' : 'MISS') : 'n/a',
      ]),
      [
        'geomean (integer)', '', '', fmt(geo(intRows.map((r) => r.medianMips)), 1), fmt(geo(intRows.map((r) => r.bestMips)), 1), '',
        ...(model === 'atomic'
          ? [
              fmt(geo(intRows.map((r) => r.unfusedMips ?? NaN)), 1),
              `${fmt(geo(intRows.map((r) => r.medianMips / (r.unfusedMips ?? NaN))), 2)}x`,
              fmt(geo(intRows.map((r) => r.recordMips ?? NaN)), 1),
              `${fmt((geo(intRows.map((r) => r.medianMips / (r.recordMips ?? NaN))) - 1) * 100, 0)}%`,
            ]
          : []),
        '', '',
      ],
    ],
    notes: [
      'MIPS = guest instructions retired (exact count) / host wall seconds of the run, output captured.',
      'host cycles/inst = host frequency / (median MIPS x 1e6): host cycles spent per guest instruction (no PMU to count host instructions).',
      ...(model === 'atomic'
        ? [
            'unfused: one run with block fusion off (fuseAfter = Infinity: every instruction dispatched through its block\'s closure array), between the fused rounds; speed-up = median fused MIPS / unfused MIPS.',
            'record: one run keeping the memory timestamp record (a store per data access), as sample --warming record\'s fast-forward does; cost = median MIPS / record MIPS - 1.',
          ]
        : []),
      model === 'o3'
        ? "gem5's O3CPU runs ~0.2 MIPS; the o3 model's time is spent in the pipeline, branch predictor and caches, plus the functional core that feeds it."
        : "gem5's atomic CPU runs ~1.3 MIPS on comparable hosts; matmul_fp is floating point (not in the integer target).",
      `load average: ${os.loadavg().map((x) => fmt(x, 2)).join(' ')} (the machine is shared: figures are noisy).`,
    ],
  };
  process.stdout.write('\n' + renderText(table));
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileAtomic(path.join(RESULTS_DIR, `${model}.json`), JSON.stringify({ generatedAt: new Date().toISOString(), hostFreqHz: hz, model, rows }, null, 2) + '\n');
  writeFileAtomic(path.join(RESULTS_DIR, `${model}.md`), renderMarkdown(table) + '\n');
  process.stdout.write(`wrote ${path.relative(ROOT, path.join(RESULTS_DIR, `${model}.json`))}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
