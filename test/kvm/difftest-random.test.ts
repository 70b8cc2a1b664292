/**
 * Random instruction sequences on KVM (the host CPU) and on the atomic CPU: the suite runs
 * 2,000 seeded sequences and expects the same end and the same final state for each; a
 * mismatch prints its shrunk reproducer. A deliberately broken core shows that the harness
 * catches and shrinks a difference.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadAtomicCpu, loadSupportFilter, type AtomicFactory } from '../../src/difftest/atomic.js';
import { Difftest } from '../../src/difftest/difftest.js';
import { selectForms } from '../../src/difftest/forms.js';
import { SnippetGenerator } from '../../src/difftest/generator.js';
import { KvmSnippetRunner } from '../../src/difftest/kvmSnippet.js';
import { describeKvm } from './support.js';

/** The suite's seed: fixed, so a failure reproduces with `npm run difftest -- --seed 1 --index N`. */
const SEED = 1;
const COUNT = 2000;

describeKvm('difftest: random sequences, KVM against the atomic CPU', () => {
  let kvm: KvmSnippetRunner;
  let atomic: AtomicFactory;
  let gen: SnippetGenerator;

  beforeAll(async () => {
    kvm = KvmSnippetRunner.create();
    const core = await loadAtomicCpu();
    if (!core.factory) throw new Error(`the atomic CPU is needed: ${core.reason}`);
    atomic = core.factory;
    const support = await loadSupportFilter();
    gen = new SnippetGenerator(selectForms({ cpuid: kvm.cpuid, supports: support.filter }).forms, kvm.cpuid);
  });
  afterAll(() => kvm?.close());

  it(`${COUNT} random sequences (seed ${SEED}) end the same way in the same state`, () => {
    const dt = new Difftest(kvm, gen, atomic);
    const t0 = performance.now();
    const report = dt.run({ seed: SEED, count: COUNT, maxMismatches: 5 });
    const seconds = (performance.now() - t0) / 1000;
    expect(report.mismatches.map((m) => m.report)).toEqual([]);
    expect(report.ran).toBe(COUNT);
    const unsupported = Object.values(report.unsupported).reduce((a, b) => a + b, 0);
    expect(unsupported, `skipped as unsupported: ${JSON.stringify(report.unsupported)}`).toBeLessThan(COUNT / 20);
    expect(report.completed).toBeGreaterThan(COUNT * 0.9);
    expect(report.testedInstructions).toBeGreaterThan(COUNT * 5);
    expect(seconds).toBeLessThan(50);
  });

  it('a core that gets something wrong is caught, and the reproducer is shrunk to the instruction at fault', () => {
    // Broken on purpose: `xmm15` comes back with its top bit flipped whenever xmm15 was written.
    const broken: AtomicFactory = (opts) => {
      const cpu = atomic(opts);
      const get = cpu.getThreadContext.bind(cpu);
      let initial15 = '';
      const set = cpu.setThreadContext.bind(cpu);
      cpu.setThreadContext = (tc) => {
        initial15 = Buffer.from(tc.xmm.subarray(240)).toString('hex');
        set(tc);
      };
      cpu.getThreadContext = () => {
        const tc = get();
        if (Buffer.from(tc.xmm.subarray(240)).toString('hex') !== initial15) tc.xmm[255] = tc.xmm[255]! ^ 0x80;
        return tc;
      };
      return cpu;
    };
    const dt = new Difftest(kvm, gen, broken);
    const report = dt.run({ seed: SEED, count: 400, maxMismatches: 1 });
    expect(report.mismatches).toHaveLength(1);
    const m = report.mismatches[0]!;
    expect(m.diffs.map((d) => d.field)).toEqual(['xmm15']);
    expect(m.encoded.insns.length).toBeLessThan(m.originalInstructions);
    expect(m.encoded.insns.filter((x) => x.role === 'test').length).toBe(1);
    expect(m.encoded.insns.find((x) => x.role === 'test')!.text).toMatch(/xmm15/);
    expect(m.report).toContain(`--seed ${SEED} --index ${m.index}`);
    expect(m.report).toMatch(/differences:\n {2}xmm15 +kvm [0-9a-f]{16}_/);
  });
});
