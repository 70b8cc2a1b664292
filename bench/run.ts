/**
 * `npm run bench`: KVM performance of switchsim against native execution.
 *
 *   1. native vs KVM wall time per compute workload, plus the in-guest comparison;
 *   2. syscall round trip (syscall_latency), natively and under KVM, plus a host-side figure;
 *   3. VM creation / CPUID capture micro-benchmarks and KvmCpuClient.start to ready.
 *
 * Prints the tables on stdout (progress on stderr) and writes bench/results/kvm.json and
 * bench/results/kvm.md.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compareTable, compareWorkload, gapTable, type CompareResult } from './lib/compare.js';
import { checkBuilt, checkKvm, describeHost, loadWorkloads, RESULTS_DIR, ROOT, type HostInfo, type Workload } from './lib/env.js';
import { RunCheckError } from './lib/kvmRun.js';
import { measureFirstTouch, type FirstTouch } from './lib/machine.js';
import { startupBench, startupTables, type StartupResult } from './lib/startup.js';
import { syscallBench, syscallTables, type SyscallResult } from './lib/syscall.js';
import { renderMarkdown, renderText, type Table } from './lib/table.js';
import { BenchSetupError, fmt, progress } from './lib/util.js';
import { writeFileAtomic } from '../src/util/atomicWrite.js';

const USAGE = `usage: npm run bench -- [--rounds N] [--only NAME,...] [--starts N]

  --rounds N       native/KVM rounds per workload and syscall_latency runs (default 5)
  --only NAMES     run only these (comma-separated): workload names for the native-vs-KVM
                   table, 'syscall_latency' (or 'syscall') for the syscall round trip,
                   'startup' (or 'vm') for the VM creation / start-up benchmarks
  --starts N       KvmCpuClient.start runs for the start-up p50 (default 20)
  -h, --help       this text

Writes bench/results/kvm.json and bench/results/kvm.md.`;

const SYSCALL_WORKLOAD = 'syscall_latency';
const STARTUP_PROGRAM = 'checksum';

interface Options {
  rounds: number;
  starts: number;
  only: string[] | null;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { rounds: 5, starts: 20, only: null };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i]!;
    let inline: string | undefined;
    if (a.startsWith('--') && a.includes('=')) {
      inline = a.slice(a.indexOf('=') + 1);
      a = a.slice(0, a.indexOf('='));
    }
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new BenchSetupError(`${a} needs a value\n\n${USAGE}`);
      return v;
    };
    const count = (name: string): number => {
      const v = value();
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new BenchSetupError(`${name} must be a positive integer, got '${v}'`);
      return n;
    };
    switch (a) {
      case '--rounds':
        o.rounds = count(a);
        break;
      case '--starts':
        o.starts = count(a);
        break;
      case '--only':
        o.only = value()
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        break;
      case '-h':
      case '--help':
        process.stdout.write(USAGE + '\n');
        process.exit(0);
        break;
      default:
        throw new BenchSetupError(`unknown argument '${a}'\n\n${USAGE}`);
    }
  }
  return o;
}

interface Plan {
  compare: Workload[];
  syscall: Workload | null;
  startup: Workload | null;
}

function plan(opts: Options, all: Workload[]): Plan {
  const byName = new Map(all.map((w) => [w.name, w]));
  const need = (name: string): Workload => {
    const w = byName.get(name);
    if (!w) throw new BenchSetupError(`workloads/workloads.json has no workload '${name}'`);
    return w;
  };
  const compareAll = all.filter((w) => w.kind === 'freestanding' || w.name === 'libc_hello');
  if (!opts.only) return { compare: compareAll, syscall: need(SYSCALL_WORKLOAD), startup: need(STARTUP_PROGRAM) };
  const valid = new Set([...compareAll.map((w) => w.name), SYSCALL_WORKLOAD, 'syscall', 'startup', 'vm']);
  const unknown = opts.only.filter((n) => !valid.has(n));
  if (unknown.length) {
    throw new BenchSetupError(`--only: unknown name(s) ${unknown.join(', ')}; valid: ${[...valid].join(', ')}`);
  }
  const only = new Set(opts.only);
  return {
    compare: compareAll.filter((w) => only.has(w.name)),
    syscall: only.has(SYSCALL_WORKLOAD) || only.has('syscall') ? need(SYSCALL_WORKLOAD) : null,
    startup: only.has('startup') || only.has('vm') ? need(STARTUP_PROGRAM) : null,
  };
}

function hostTable(h: HostInfo): Table {
  return {
    title: 'Host',
    headers: ['item', 'value'],
    align: ['l', 'l'],
    rows: [
      ['CPU', `${h.cpuModel} (${h.logicalCpus} logical CPUs)`],
      ['host frequency', `${fmt(h.hostFreq.hz / 1e9, 3)} GHz (source: ${h.hostFreq.source})`],
      ['kernel', h.kernel],
      ['node', h.node],
      ['kvm modules', h.kvmModules],
      ['memory', `${fmt(h.totalMemGiB, 1)} GiB`],
      ['load average at start', h.loadAverageAtStart.map((x) => fmt(x, 2)).join(' ')],
    ],
  };
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  checkKvm();
  const p = plan(opts, loadWorkloads());
  checkBuilt([...p.compare.map((w) => w.name), ...(p.syscall ? [p.syscall.name] : []), ...(p.startup ? [p.startup.name] : [])]);

  const started = performance.now();
  const host = describeHost();
  const tables: Table[] = [hostTable(host)];
  const show = (t: Table) => {
    tables.push(t);
    process.stdout.write('\n' + renderText(t));
  };
  process.stdout.write(renderText(tables[0]!));

  const problems: string[] = [];
  const statsRoot = mkdtempSync(path.join(os.tmpdir(), 'switchsim-bench-'));
  const compare: CompareResult[] = [];
  let syscall: SyscallResult | null = null;
  let startup: StartupResult | null = null;
  let firstTouch: FirstTouch | null = null;
  try {
    if (p.compare.length) {
      progress('[native vs kvm] page first-touch probe (guest and native), before the workloads');
      firstTouch = measureFirstTouch();
    }
    for (const w of p.compare) {
      try {
        compare.push(compareWorkload(w, opts.rounds, statsRoot));
      } catch (e) {
        if (!(e instanceof RunCheckError)) throw e;
        progress(`  ${w.name}: FAILED: ${e.message}`);
        problems.push(e.message);
        compare.push({ name: w.name, kind: w.kind, args: w.args, error: e.message } as CompareResult);
      }
    }
    if (compare.length) show(compareTable(compare, opts.rounds));
    if (firstTouch) {
      progress('[native vs kvm] page first-touch probe (guest and native), after the workloads');
      const after = measureFirstTouch();
      firstTouch = {
        pages: firstTouch.pages,
        guestFirstUs: [...firstTouch.guestFirstUs, ...after.guestFirstUs],
        guestAgainUs: [...firstTouch.guestAgainUs, ...after.guestAgainUs],
        guestAfterReloadUs: [...firstTouch.guestAfterReloadUs, ...after.guestAfterReloadUs],
        reloadUs: [...firstTouch.reloadUs, ...after.reloadUs],
        nativeFirstUs: [...firstTouch.nativeFirstUs, ...after.nativeFirstUs],
        nativeAgainUs: [...firstTouch.nativeAgainUs, ...after.nativeAgainUs],
      };
      if (!compare.some((r) => !r.error)) firstTouch = null;
    }
    for (const r of compare) {
      if (!r.error && !r.outputMatches) problems.push(`${r.name}: stdout under KVM differs from the native run`);
    }

    if (p.syscall) {
      try {
        syscall = syscallBench(p.syscall, opts.rounds, statsRoot, host.hostFreq.hz, host.hostFreq.source);
        for (const t of syscallTables(syscall)) show(t);
      } catch (e) {
        if (!(e instanceof RunCheckError)) throw e;
        progress(`  syscall_latency: FAILED: ${e.message}`);
        problems.push(e.message);
      }
    }

    if (firstTouch) {
      const perSyscall = syscall
        ? { us: syscall.summary.hostSide.totalUsPerSyscall, source: 'host-side figure of the syscall table' }
        : { us: 30, source: 'assumed; run the syscall benchmark to measure it' };
      show(gapTable(compare, firstTouch, perSyscall.us, perSyscall.source));
    }

    if (p.startup) {
      startup = await startupBench(p.startup, opts.starts, host.hostFreq.hz);
      for (const t of startupTables(startup)) show(t);
    }
  } finally {
    rmSync(statsRoot, { recursive: true, force: true });
  }

  const durationSeconds = (performance.now() - started) / 1000;
  const loadAverageAtEnd = os.loadavg();
  const footer = `bench: done in ${fmt(durationSeconds, 1)} s; load average at end ${loadAverageAtEnd.map((x) => fmt(x, 2)).join(' ')}`;
  process.stdout.write(`\n${footer}\n`);
  if (problems.length) process.stdout.write(`PROBLEMS:\n${problems.map((x) => `  - ${x}`).join('\n')}\n`);

  mkdirSync(RESULTS_DIR, { recursive: true });
  const json = {
    schema: 1,
    generatedAt: new Date().toISOString(),
    argv: process.argv.slice(2),
    options: opts,
    host,
    durationSeconds,
    loadAverageAtEnd,
    compare,
    firstTouch,
    syscall,
    startup,
    problems,
  };
  const jsonPath = path.join(RESULTS_DIR, 'kvm.json');
  writeFileAtomic(jsonPath, JSON.stringify(json, null, 2) + '\n');
  const md = [
    '# switchsim KVM benchmarks',
    '',
    `Generated by \`npm run bench${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}\` at ${json.generatedAt}; ` +
      `${fmt(durationSeconds, 1)} s. Raw samples: \`bench/results/kvm.json\`.`,
    '',
    ...tables.map(renderMarkdown).flatMap((t) => [t]),
    `Load average at end: ${loadAverageAtEnd.map((x) => fmt(x, 2)).join(' ')}.`,
    '',
    ...(problems.length ? ['## Problems', '', ...problems.map((x) => `- ${x}`), ''] : []),
  ].join('\n');
  // Not summary.md: on a case-insensitive file system that is SUMMARY.md (bench/summary.ts).
  const mdPath = path.join(RESULTS_DIR, 'kvm.md');
  writeFileAtomic(mdPath, md);
  process.stdout.write(`wrote ${path.relative(ROOT, jsonPath)} and ${path.relative(ROOT, mdPath)}\n`);
  return problems.length ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof BenchSetupError) {
      process.stderr.write(`bench: error: ${e.message}\n`);
    } else {
      process.stderr.write(`bench: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    }
    process.exitCode = 1;
  },
);
