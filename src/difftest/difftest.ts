/**
 * Random differential testing: generated snippets run on KVM (the host CPU, the oracle) and on
 * the atomic CPU; final states must agree. A mismatch is shrunk (items dropped, structures
 * flattened, while the mismatch persists) and printed as a reproducer: the sequence
 * disassembled, the initial state, and each differing field with both values.
 *
 * Both CPUs share one snippet address space (the snippet VM's guest memory): each run rewrites
 * code, scratch and stack first, so neither sees the other's leftovers.
 */
import { Gpr, GPR_NAMES } from '../guest/threadContext.js';
import { isUnsupportedInstruction, type AtomicCpuLike, type AtomicFactory } from './atomic.js';
import { compareContexts, compareEnds, compareMemory, describeEnd, formatDiffs, type CompareOptions, type FieldDiff } from './compare.js';
import type { Form } from './forms.js';
import { encodeSnippet, snippetInput, SnippetGenerator, countTested, type EncodedSnippet, type Item, type Snippet } from './generator.js';
import type { KvmSnippetRunner } from './kvmSnippet.js';
import { SCRATCH_ADDR, STACK_ADDR } from './layout.js';
import type { SnippetEnd, SnippetInput, SnippetResult } from './snippetMemory.js';

/** Per-snippet instruction budget for the JS core (snippets are short and loop-free). */
const JS_INSTRUCTION_LIMIT = 100_000;

export type JsRun =
  | { kind: 'ran'; result: SnippetResult }
  | { kind: 'unsupported'; mnemonic: string; message: string }
  | { kind: 'limit' }
  | { kind: 'crashed'; message: string };

/** Runs snippets on the atomic CPU in the snippet address space. */
export class AtomicSnippetRunner {
  private cpu: AtomicCpuLike | undefined;

  constructor(
    private readonly factory: AtomicFactory,
    private readonly kvm: KvmSnippetRunner,
  ) {}

  run(input: SnippetInput): JsRun {
    const mem = this.kvm.memory;
    mem.load(input);
    if (this.cpu?.invalidateCode) this.cpu.invalidateCode();
    else this.cpu = this.factory({ aspace: this.kvm.aspace, cpuid: this.kvm.cpuid, ...(this.kvm.xcr0 !== null ? { xcr0: this.kvm.xcr0 } : {}) });
    const cpu = this.cpu;
    try {
      cpu.setThreadContext(input.context);
      const out = cpu.run(JS_INSTRUCTION_LIMIT);
      if (out.kind === 'limit') return { kind: 'limit' };
      if (out.kind !== 'faulted') return { kind: 'crashed', message: `snippet ended with '${out.kind}' (snippets make no syscalls)` };
      const r = out.report;
      const end: SnippetEnd = {
        vector: r.vector,
        errorCode: r.errorCode,
        rip: BigInt(r.rip),
        faultAddress: r.vector === 14 ? BigInt(r.faultAddress) : 0n,
      };
      return { kind: 'ran', result: { end, final: { context: cpu.getThreadContext(), scratch: mem.readScratch(), stack: mem.readStack() } } };
    } catch (e) {
      this.cpu = undefined; // its state is suspect: start afresh next time
      if (isUnsupportedInstruction(e)) return { kind: 'unsupported', mnemonic: e.mnemonic ?? '?', message: e.message };
      return { kind: 'crashed', message: e instanceof Error ? (e.stack ?? e.message) : String(e) };
    }
  }
}

export type SnippetVerdict =
  | { kind: 'match'; end: SnippetEnd; completed: boolean }
  | { kind: 'mismatch'; diffs: FieldDiff[]; kvm: SnippetResult; js: JsRun }
  | { kind: 'unsupported'; mnemonic: string; message: string };

/** Compares one snippet's runs. */
export function judge(encoded: EncodedSnippet, kvm: SnippetResult, js: JsRun, opts: CompareOptions = {}): SnippetVerdict {
  if (js.kind === 'unsupported') return js;
  if (js.kind === 'limit') return { kind: 'mismatch', diffs: [{ field: 'end', kvm: describeEnd(kvm.end, encoded.terminator), js: `no end within ${JS_INSTRUCTION_LIMIT} instructions` }], kvm, js };
  if (js.kind === 'crashed') return { kind: 'mismatch', diffs: [{ field: 'end', kvm: describeEnd(kvm.end, encoded.terminator), js: `the JS core threw: ${js.message}` }], kvm, js };
  const j = js.result;
  const diffs = compareEnds(kvm.end, j.end, encoded.terminator);
  if (diffs.length === 0) {
    const undefinedFlags = encoded.undefinedBefore.get(Number(kvm.end.rip)) ?? 0;
    diffs.push(...compareContexts(kvm.final.context, j.final.context, undefinedFlags, opts));
    diffs.push(...compareMemory('scratch', SCRATCH_ADDR, kvm.final.scratch, j.final.scratch));
    diffs.push(...compareMemory('stack', STACK_ADDR, kvm.final.stack, j.final.stack));
  }
  if (diffs.length) return { kind: 'mismatch', diffs, kvm, js };
  return { kind: 'match', end: kvm.end, completed: kvm.end.vector === 6 && kvm.end.rip === BigInt(encoded.terminator) };
}

export interface Mismatch {
  seed: number;
  index: number;
  /** The shrunk snippet and its verdict. */
  snippet: Snippet;
  encoded: EncodedSnippet;
  diffs: FieldDiff[];
  originalInstructions: number;
  report: string;
}

export interface DifftestOptions {
  seed: number;
  count: number;
  /** First index (default 0): run indices start … start+count-1. */
  start?: number;
  shrink?: boolean;
  /** Stop after this many mismatches (default 10). */
  maxMismatches?: number;
  compare?: CompareOptions;
  onProgress?: (done: number, report: DifftestReport) => void;
  onMismatch?: (m: Mismatch) => void;
}

export interface DifftestReport {
  seed: number;
  ran: number;
  /** Snippets that reached their terminator on both CPUs. */
  completed: number;
  /** Snippets that ended in another exception on both (by vector). */
  faulted: Record<string, number>;
  mismatches: Mismatch[];
  /** Snippets the JS core could not run, by mnemonic. */
  unsupported: Record<string, number>;
  /** Tested instructions executed (setup movs and flow excluded), summed over snippets. */
  testedInstructions: number;
  /** Wall milliseconds spent generating, on KVM, on the JS core, comparing/shrinking. */
  ms: { generate: number; kvm: number; js: number; other: number };
}

/** Runs snippets on both CPUs (or, without a JS core, twice on KVM: a determinism check). */
export class Difftest {
  private readonly js: AtomicSnippetRunner | null;

  constructor(
    readonly kvm: KvmSnippetRunner,
    readonly generator: SnippetGenerator,
    atomic: AtomicFactory | null,
  ) {
    this.js = atomic ? new AtomicSnippetRunner(atomic, kvm) : null;
  }

  get hasJsCore(): boolean {
    return this.js !== null;
  }

  /** KVM result, and the JS core's (or KVM's again when there is no JS core). */
  runBoth(snippet: Snippet, encoded: EncodedSnippet): { kvm: SnippetResult; js: JsRun; kvmMs: number; jsMs: number } {
    const input = snippetInput(snippet, encoded);
    const t0 = performance.now();
    const kvm = this.kvm.run(input);
    const t1 = performance.now();
    const js: JsRun = this.js ? this.js.run(input) : { kind: 'ran', result: this.kvm.run(input) };
    return { kvm, js, kvmMs: t1 - t0, jsMs: performance.now() - t1 };
  }

  check(snippet: Snippet, opts: CompareOptions = {}): { verdict: SnippetVerdict; encoded: EncodedSnippet } {
    const encoded = snippet.encoded ?? encodeSnippet(snippet.items);
    const { kvm, js } = this.runBoth(snippet, encoded);
    return { verdict: judge(encoded, kvm, js, opts), encoded };
  }

  run(opts: DifftestOptions): DifftestReport {
    const report: DifftestReport = {
      seed: opts.seed, ran: 0, completed: 0, faulted: {}, mismatches: [], unsupported: {}, testedInstructions: 0,
      ms: { generate: 0, kvm: 0, js: 0, other: 0 },
    };
    const start = opts.start ?? 0;
    const maxMismatches = opts.maxMismatches ?? 10;
    for (let i = start; i < start + opts.count; i++) {
      const t0 = performance.now();
      const snippet = this.generator.generate(opts.seed, i);
      const encoded = snippet.encoded ?? encodeSnippet(snippet.items);
      const t1 = performance.now();
      const { kvm, js, kvmMs, jsMs } = this.runBoth(snippet, encoded);
      const t2 = performance.now();
      const verdict = judge(encoded, kvm, js, opts.compare);
      report.ran++;
      report.ms.generate += t1 - t0;
      report.ms.kvm += kvmMs;
      report.ms.js += jsMs;
      if (verdict.kind === 'match') {
        report.testedInstructions += countTested(snippet.items);
        if (verdict.completed) report.completed++;
        else {
          const key = describeEnd(verdict.end).split(' ')[0]!;
          report.faulted[key] = (report.faulted[key] ?? 0) + 1;
        }
      } else if (verdict.kind === 'unsupported') {
        report.unsupported[verdict.mnemonic] = (report.unsupported[verdict.mnemonic] ?? 0) + 1;
      } else {
        const m = this.mismatch(snippet, encoded, verdict, opts);
        report.mismatches.push(m);
        opts.onMismatch?.(m);
      }
      report.ms.other += performance.now() - t2;
      if (opts.onProgress && (i - start + 1) % 1000 === 0) opts.onProgress(i - start + 1, report);
      if (report.mismatches.length >= maxMismatches) break;
    }
    return report;
  }

  private mismatch(snippet: Snippet, encoded: EncodedSnippet, verdict: Extract<SnippetVerdict, { kind: 'mismatch' }>, opts: DifftestOptions): Mismatch {
    const originalInstructions = encoded.insns.length;
    let best = { snippet, encoded, diffs: verdict.diffs };
    if (opts.shrink !== false) best = this.shrink(snippet, encoded, verdict.diffs, opts.compare);
    const m: Mismatch = {
      seed: snippet.seed,
      index: snippet.index,
      snippet: best.snippet,
      encoded: best.encoded,
      diffs: best.diffs,
      originalInstructions,
      report: '',
    };
    m.report = formatReproducer(m, this.runBoth(best.snippet, best.encoded));
    return m;
  }

  /** Delta debugging: drop items (and structure wrappers) while a mismatch remains. */
  shrink(snippet: Snippet, encoded: EncodedSnippet, diffs: FieldDiff[], compare?: CompareOptions): { snippet: Snippet; encoded: EncodedSnippet; diffs: FieldDiff[] } {
    let cur = { snippet, encoded, diffs };
    // Keep the same failure: a candidate must still differ in one of the original fields, and
    // end the same way on KVM (a shrink must not turn a completed run into a page fault).
    const fields = new Set(diffs.map((d) => fieldClass(d.field)));
    const endClass = (e: SnippetEnd, t: number) => (e.vector === 6 && e.rip === BigInt(t) ? 'completed' : `v${e.vector}`);
    const originalEnd = endClass(this.runBoth(snippet, encoded).kvm.end, encoded.terminator);
    const fails = (items: Item[]) => {
      if (items.length === 0) return null;
      let enc: EncodedSnippet;
      try {
        enc = encodeSnippet(items);
      } catch {
        return null;
      }
      // Dropping a flag-defining set-up may expose an undefined flag to a reader: not a reproducer.
      if (enc.undefinedReads.length) return null;
      const cand: Snippet = { ...cur.snippet, items, encoded: enc };
      const { kvm, js } = this.runBoth(cand, enc);
      const v = judge(enc, kvm, js, compare);
      if (v.kind !== 'mismatch' || !v.diffs.some((d) => fields.has(fieldClass(d.field)))) return null;
      if (endClass(kvm.end, enc.terminator) !== originalEnd) return null;
      return { snippet: cand, encoded: enc, diffs: v.diffs };
    };
    for (let round = 0; round < 10; round++) {
      let progress = false;
      for (const variant of variants(cur.snippet.items)) {
        const r = fails(variant);
        if (r) {
          cur = r;
          progress = true;
          break;
        }
      }
      if (!progress) break;
    }
    return cur;
  }
}

/** 'scratch[0x600010..0x600018)' → 'scratch': memory runs of one area are the same failure. */
function fieldClass(field: string): string {
  return field.replace(/\[.*$/, '');
}

/** Smaller variants of an item list, most aggressive first (halves, single items, flattening). */
function* variants(items: readonly Item[]): Generator<Item[]> {
  const n = items.length;
  if (n >= 4) {
    const h = Math.floor(n / 2);
    yield items.slice(0, h);
    yield items.slice(h);
  }
  for (let i = 0; i < n; i++) yield [...items.slice(0, i), ...items.slice(i + 1)];
  for (let i = 0; i < n; i++) {
    const it = items[i]!;
    if (it.kind === 'seq') continue;
    // Replace the structure by its body (branch/call removed).
    yield [...items.slice(0, i), ...it.body, ...items.slice(i + 1)];
    for (const body of variants(it.body)) yield [...items.slice(0, i), { ...it, body }, ...items.slice(i + 1)];
    if (it.body.length === 1) yield [...items.slice(0, i), { ...it, body: [] }, ...items.slice(i + 1)];
  }
  // Drop set-up instructions one at a time (sometimes the tested instruction alone suffices).
  for (let i = 0; i < n; i++) {
    const it = items[i]!;
    if (it.kind !== 'seq' || it.insns.length < 2) continue;
    for (let k = 0; k < it.insns.length; k++) {
      if (it.insns[k]!.role !== 'setup' || it.insns[k]!.essential) continue;
      yield [...items.slice(0, i), { kind: 'seq', insns: [...it.insns.slice(0, k), ...it.insns.slice(k + 1)] }, ...items.slice(i + 1)];
    }
  }
}

/** The reproducer: how to rerun it, the sequence disassembled, the initial state, the differences. */
export function formatReproducer(m: Mismatch, runs?: { kvm: SnippetResult; js: JsRun }): string {
  const lines: string[] = [];
  lines.push(`MISMATCH seed ${m.seed} index ${m.index}  (rerun: npm run difftest -- --seed ${m.seed} --index ${m.index})`);
  lines.push(`minimal sequence: ${m.encoded.insns.length} instructions (shrunk from ${m.originalInstructions})`);
  const endRip = runs ? Number(runs.kvm.end.rip) : -1;
  for (const x of m.encoded.insns) {
    const mark = x.addr === endRip ? '=>' : '  ';
    const bytes = Buffer.from(x.bytes).toString('hex').replace(/(..)/g, '$1 ').trim();
    lines.push(`  ${mark} 0x${x.addr.toString(16)}  ${bytes.padEnd(44)} ${x.text}${x.role === 'setup' ? '    ; set-up' : ''}`);
  }
  const tc = m.snippet.initial.context;
  lines.push('initial state:');
  for (let i = 0; i < 16; i += 4) {
    lines.push('  ' + [0, 1, 2, 3].map((k) => `${GPR_NAMES[i + k]!.padStart(3)}=${tc.gpr[i + k]!.toString(16).padStart(16, '0')}`).join(' '));
  }
  lines.push(`  rflags=0x${tc.rflags.toString(16)} mxcsr=0x${tc.mxcsr.toString(16)} fs.base=0x${tc.fsBase.toString(16)} gs.base=0x${tc.gsBase.toString(16)} rsp=0x${tc.gpr[Gpr.rsp]!.toString(16)}`);
  for (let i = 0; i < 16; i += 2) {
    const x = (r: number) => Buffer.from(tc.xmm.subarray(r * 16, r * 16 + 16)).reverse().toString('hex');
    lines.push(`  xmm${i}=${x(i)} xmm${i + 1}=${x(i + 1)}`);
  }
  lines.push('  (scratch page and stack: random bytes from the seed)');
  if (runs) {
    lines.push(`kvm: ${describeEnd(runs.kvm.end, m.encoded.terminator)}`);
    const j = runs.js;
    lines.push(`js:  ${j.kind === 'ran' ? describeEnd(j.result.end, m.encoded.terminator) : j.kind === 'crashed' ? `threw ${j.message.split('\n')[0]}` : j.kind}`);
  }
  lines.push('differences:');
  lines.push(formatDiffs(m.diffs));
  return lines.join('\n');
}

export function formatSummary(r: DifftestReport, hasJs: boolean): string {
  const per = (ms: number) => (r.ran ? ((ms / r.ran) * 1000).toFixed(0) : '0');
  const faulted = Object.entries(r.faulted).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
  const unsupported = Object.entries(r.unsupported).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
  return [
    `${r.ran} sequences (seed ${r.seed}), ${r.testedInstructions} tested instructions: ${r.mismatches.length} mismatches${hasJs ? '' : ' (KVM against itself: no JS core)'}`,
    `  ended at the terminator: ${r.completed}; ended in a fault on both: ${faulted}`,
    `  unsupported by the JS core (skipped): ${unsupported}`,
    `  per sequence: generate ${per(r.ms.generate)} µs, KVM ${per(r.ms.kvm)} µs, JS ${per(r.ms.js)} µs, compare/shrink ${per(r.ms.other)} µs`,
  ].join('\n');
}

export type { Form };
