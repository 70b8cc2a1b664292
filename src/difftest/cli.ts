#!/usr/bin/env node
/**
 * `npm run difftest -- [options]`: random instruction sequences on KVM and on the atomic CPU.
 *
 *   --count N          sequences to run (default 10000)
 *   --seed S           run seed (default 1); sequence i of seed S is always the same
 *   --start I          first index (default 0)
 *   --index I          run only sequence I and print it with both results
 *   --min-items N / --max-items N   items per sequence (default 1 / 20)
 *   --groups a,b       only these form groups (see --list-forms)
 *   --no-shrink        print mismatches as generated
 *   --max-mismatches N stop after N mismatches (default 10)
 *   --ignore-mxcsr-flags  do not compare MXCSR's sticky exception flags
 *   --kvm-only         no JS core: run each sequence twice on KVM (determinism of the oracle)
 *   --json FILE        write the summary (and reproducers) as JSON
 *   --list-forms       print the coverage table: every form, its group, and whether it is generated
 *   --flags-doc FILE   write the undefined-flags table (markdown) for every form
 *
 * `npm run difftest -- --lockstep syscalls|instructions [--max N] [--env K=V]… -- PROGRAM ARGS…`
 * runs a whole program on KVM and on the atomic CPU in lockstep (at every syscall, or after every
 * instruction for the first N, default 100000) and prints the first mismatch.
 *
 * Exit status: 0 no mismatch, 1 mismatches, 2 bad usage, 3 no KVM.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { lockstepInstructions, lockstepSyscalls } from './lockstep.js';
import { Kvm } from '../kvm/kvm.js';
import { loadAtomicCpu, loadSupportFilter } from './atomic.js';
import { Difftest, formatReproducer, formatSummary } from './difftest.js';
import { ALL_GROUPS, allForms, selectForms, type FormGroup } from './forms.js';
import { undefinedFlagsMarkdown } from './flagsDoc.js';
import { encodeSnippet, SnippetGenerator } from './generator.js';
import { KvmSnippetRunner } from './kvmSnippet.js';
import { describeEnd, formatDiffs } from './compare.js';

interface Args {
  count: number;
  seed: number;
  start: number;
  index: number | null;
  minItems: number;
  maxItems: number;
  groups: FormGroup[] | null;
  shrink: boolean;
  maxMismatches: number;
  ignoreMxcsrFlags: boolean;
  kvmOnly: boolean;
  json: string | null;
  listForms: boolean;
  flagsDoc: string | null;
  lockstep: 'syscalls' | 'instructions' | null;
  max: number;
  env: string[];
  program: string[];
}

function usage(msg: string): never {
  process.stderr.write(`difftest: ${msg}\n(see the header of src/difftest/cli.ts for the options)\n`);
  process.exit(2);
}

function parse(argv: string[]): Args {
  const a: Args = {
    count: 10000, seed: 1, start: 0, index: null, minItems: 1, maxItems: 20, groups: null, shrink: true,
    maxMismatches: 10, ignoreMxcsrFlags: false, kvmOnly: false, json: null, listForms: false, flagsDoc: null,
    lockstep: null, max: 100_000, env: [], program: [],
  };
  const int = (v: string | undefined, name: string) => {
    if (v === undefined || !/^\d+$/.test(v)) usage(`${name} needs a non-negative integer`);
    return Number(v);
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = () => argv[++i];
    switch (k) {
      case '--count': a.count = int(v(), k); break;
      case '--seed': a.seed = int(v(), k) >>> 0; break;
      case '--start': a.start = int(v(), k); break;
      case '--index': a.index = int(v(), k); break;
      case '--min-items': a.minItems = int(v(), k); break;
      case '--max-items': a.maxItems = int(v(), k); break;
      case '--groups': {
        const g = (v() ?? '').split(',').filter(Boolean) as FormGroup[];
        const bad = g.filter((x) => !ALL_GROUPS.includes(x));
        if (bad.length || g.length === 0) usage(`--groups: unknown ${bad.join(',') || '(empty)'}; groups: ${ALL_GROUPS.join(',')}`);
        a.groups = g;
        break;
      }
      case '--no-shrink': a.shrink = false; break;
      case '--max-mismatches': a.maxMismatches = int(v(), k); break;
      case '--ignore-mxcsr-flags': a.ignoreMxcsrFlags = true; break;
      case '--kvm-only': a.kvmOnly = true; break;
      case '--json': a.json = v() ?? usage('--json needs a file'); break;
      case '--list-forms': a.listForms = true; break;
      case '--flags-doc': a.flagsDoc = v() ?? usage('--flags-doc needs a file'); break;
      case '--lockstep': {
        const m = v();
        if (m !== 'syscalls' && m !== 'instructions') usage('--lockstep needs syscalls or instructions');
        a.lockstep = m;
        break;
      }
      case '--max': a.max = int(v(), k); break;
      case '--env': a.env.push(v() ?? usage('--env needs NAME=VALUE')); break;
      case '--':
        a.program = argv.slice(i + 1);
        i = argv.length;
        break;
      default: usage(`unknown option ${k}`);
    }
  }
  if (a.minItems < 1 || a.maxItems < a.minItems) usage('need 1 <= --min-items <= --max-items');
  if (a.lockstep && a.program.length === 0) usage('--lockstep needs -- PROGRAM [ARGS…]');
  return a;
}

async function main(): Promise<number> {
  const args = parse(process.argv.slice(2));
  if (args.flagsDoc) {
    writeFileSync(args.flagsDoc, undefinedFlagsMarkdown(allForms()));
    process.stdout.write(`wrote ${args.flagsDoc}\n`);
    return 0;
  }
  const probe = Kvm.probe();
  if (!probe.available) {
    process.stderr.write(`difftest: KVM is the oracle and is not available here: ${probe.reason}\n`);
    return 3;
  }
  if (args.lockstep) return lockstepMain(args);
  const kvm = KvmSnippetRunner.create();
  try {
    const support = await loadSupportFilter();
    const core = args.kvmOnly ? { factory: null, reason: '--kvm-only' } : await loadAtomicCpu();
    const selection = selectForms({ cpuid: kvm.cpuid, supports: support.filter, ...(args.groups ? { groups: args.groups } : {}) });
    if (args.listForms) {
      const excluded = new Map(selection.excluded.map((e) => [e.form.name, e.reason]));
      for (const f of allForms()) process.stdout.write(`${f.group.padEnd(12)} ${f.name.padEnd(40)} ${excluded.get(f.name) ?? 'generated'}\n`);
      process.stdout.write(`${selection.forms.length} of ${allForms().length} forms generated (support filter: ${support.source})\n`);
      return 0;
    }
    const gen = new SnippetGenerator(selection.forms, kvm.cpuid, { minItems: args.minItems, maxItems: args.maxItems });
    const dt = new Difftest(kvm, gen, core.factory);
    process.stdout.write(
      `difftest: ${selection.forms.length} forms (support filter: ${support.source}); JS side: ${
        core.factory ? (core as { source: string }).source : `none (${(core as { reason: string }).reason}): KVM determinism check`
      }\n`,
    );
    const compare = { ignoreMxcsrFlags: args.ignoreMxcsrFlags };
    if (args.index !== null) {
      const snippet = gen.generate(args.seed, args.index);
      const encoded = encodeSnippet(snippet.items);
      for (const x of encoded.insns) process.stdout.write(`  0x${x.addr.toString(16)}  ${Buffer.from(x.bytes).toString('hex').padEnd(30)} ${x.text}\n`);
      const { verdict } = dt.check(snippet, compare);
      if (verdict.kind === 'mismatch') {
        const m = { seed: args.seed, index: args.index, snippet, encoded, diffs: verdict.diffs, originalInstructions: encoded.insns.length, report: '' };
        process.stdout.write(formatReproducer(m, dt.runBoth(snippet, encoded)) + '\n');
        if (args.shrink) {
          const s = dt.shrink(snippet, encoded, verdict.diffs, compare);
          process.stdout.write('\nshrunk:\n' + formatReproducer({ ...m, ...s }, dt.runBoth(s.snippet, s.encoded)) + '\n');
        }
        return 1;
      }
      process.stdout.write(verdict.kind === 'match' ? `match: ${describeEnd(verdict.end, encoded.terminator)}\n` : `unsupported: ${verdict.message}\n`);
      return 0;
    }
    const t0 = performance.now();
    const report = dt.run({
      seed: args.seed,
      count: args.count,
      start: args.start,
      shrink: args.shrink,
      maxMismatches: args.maxMismatches,
      compare,
      onMismatch: (m) => process.stdout.write(`\n${m.report}\n`),
      onProgress: (n, r) => {
        if (n % 10000 === 0) process.stdout.write(`  ${n} sequences, ${r.mismatches.length} mismatches, ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
      },
    });
    process.stdout.write(`\n${formatSummary(report, dt.hasJsCore)}\n  wall ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    if (args.json) {
      writeFileSync(args.json, JSON.stringify({
        seed: report.seed, ran: report.ran, completed: report.completed, faulted: report.faulted, unsupported: report.unsupported,
        testedInstructions: report.testedInstructions, ms: report.ms,
        mismatches: report.mismatches.map((m) => ({ seed: m.seed, index: m.index, diffs: m.diffs, report: m.report })),
      }, null, 2));
    }
    if (report.mismatches.length) process.stdout.write(`\nfirst mismatch diff:\n${formatDiffs(report.mismatches[0]!.diffs)}\n`);
    return report.mismatches.length ? 1 : 0;
  } finally {
    kvm.close();
  }
}

async function lockstepMain(args: Args): Promise<number> {
  const core = await loadAtomicCpu();
  if (!core.factory) {
    process.stderr.write(`difftest: --lockstep needs the atomic CPU: ${core.reason}\n`);
    return 3;
  }
  const [program, ...rest] = args.program as [string, ...string[]];
  const opts = { program: path.resolve(program), argv: [path.basename(program), ...rest], envp: args.env, atomic: core.factory };
  const r = args.lockstep === 'syscalls' ? lockstepSyscalls(opts) : lockstepInstructions({ ...opts, maxInstructions: args.max });
  if (r.mismatch) process.stdout.write(`${r.mismatch.report}\n`);
  process.stdout.write(
    `lockstep ${args.lockstep}: ${r.end}; ${r.instructions} instructions, ${r.syscalls} syscalls compared` +
      `${r.maskedFlagStops ? `, ${r.maskedFlagStops} stops differing only in undefined flags` : ''}` +
      `${r.copiedNondeterministic ? `, ${r.copiedNondeterministic} rdtsc-like results copied` : ''}; ${r.seconds.toFixed(1)} s\n`,
  );
  return r.mismatch ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`difftest: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(70);
  },
);
