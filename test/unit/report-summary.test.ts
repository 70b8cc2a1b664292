/** bench/summary.ts: SUMMARY.md from whatever bench/results/*.json exist, read defensively. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FILES, renderSummary, summarizeFile } from '../../bench/summary.js';
import { makeResult, SCALING } from './report-fixture.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'switchsim-summary-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const put = (name: string, v: unknown) => writeFileSync(path.join(dir, name), typeof v === 'string' ? v : JSON.stringify(v));

const KVM = {
  generatedAt: '2026-01-01T00:00:00.000Z',
  compare: [
    { name: 'checksum', cls: 'compute', median: { nativeCpu: 0.1, kvmInGuest: 0.102 }, inGuestRatio: 0.98, inGuestRatioPaired: 0.97, wallRatio: 0.3, meetsTarget: true },
    { name: 'qsort', cls: 'compute', median: { nativeCpu: 0.1, kvmInGuest: 0.11 }, inGuestRatio: 0.9, inGuestRatioPaired: 0.91, wallRatio: 0.25, meetsTarget: false },
    { name: 'syscalls', cls: 'syscall-heavy', median: { nativeCpu: 0.01, kvmInGuest: 1 }, inGuestRatio: 0.01, wallRatio: 0.01, meetsTarget: null },
    { name: 'broken', kind: 'freestanding', error: 'exit 139' },
  ],
  syscall: { summary: { native: { p50Us: 0.13, p99Us: 0.2 }, kvm: { p50Us: 29.5, p99Us: 50 } }, meetsTarget: true },
  startup: { benchmarks: [{ name: 'VM create', meanMs: 11.7 }], clientStart: { name: 'KvmCpuClient.start -> ready', p50Ms: 107.2 } },
  problems: [],
};

describe('bench summary', () => {
  it('says "not run" for every missing file', () => {
    const md = renderSummary(dir, new Date('2026-01-02T00:00:00Z'));
    for (const f of FILES) expect(md).toContain(`not run (no bench/results/${f}.json`);
    expect(md).toContain('# switchsim benchmark summary');
  });

  it('summarizes each benchmark with its key figures against the target', () => {
    put('kvm.json', KVM);
    put('atomic.json', { generatedAt: 'x', hostFreqHz: 2.1e9, rows: [{ name: 'checksum', args: ['3'], integer: true, instructions: 45e6, medianMips: 36.1, bestMips: 37, outputMatches: true }, { name: 'matmul_fp', integer: false, medianMips: 20, outputMatches: true }] });
    put('o3.json', { rows: [{ name: 'checksum', instructions: 4.5e6, medianMips: 0.8, bestMips: 1.2, outputMatches: true }] });
    put('switch.json', { date: 'd', rounds: 400, targetMsP50: 1, latency: { 'kvm→atomic': { p50: 0.28, p99: 3.1, max: 5, n: 400 }, 'round trip kvm→atomic→kvm': { p50: 0.59, p99: 6.1, max: 18, n: 400 }, 'round trip kvm→o3→kvm': { p50: 1.2, p99: 13, max: 20, n: 400 } } });
    put('checkpoint.json', { date: 'd', rows: [{ sizeMiB: 64, mode: 'deflate-1 (default)', saveSyncMBs: 250, saveAsyncMBs: 365, restoreSyncMBs: 520, restoreAsyncMBs: 171, ratio: 0.5 }], micro: [{ name: 'encode', meanMs: 100, mbs: 600 }] });
    const md = renderSummary(dir);
    // KVM
    expect(md).toContain('| checksum | compute | 100.0 | 102.0 | 0.980 | 0.970 | 0.300 | ok |');
    expect(md).toContain('| qsort | compute | 100.0 | 110.0 | 0.900 | 0.910 | 0.250 | MISS |');
    expect(md).toContain('FAILED: exit 139');
    expect(md).toMatch(/compute geomean in-guest ratio 0\.939 \(target >= 0\.95; 1 of 2 compute workloads below\)/);
    expect(md).toContain('| KVM | 29.50 | 50.00 | ok |');
    // atomic / o3
    expect(md).toContain('| checksum | 3 | 45,000,000 | 36.10 | 37.00 | ok | ok |');
    expect(md).toContain('n/a (fp)');
    expect(md).toContain('geomean 36.10 MIPS over 1 integer workloads (target >= 30 MIPS; 0 below)');
    expect(md).toMatch(/\| O3 CPU speed \| o3\.json \| MISS \|/);
    // switch
    expect(md).toContain('| round trip kvm→atomic→kvm | 0.590 | 6.100 | 18.000 | 400 | p50 <= 1 ms | ok |');
    expect(md).toContain('| round trip kvm→o3→kvm | 1.200 | 13.000 | 20.000 | 400 | p50 <= 1 ms | MISS |');
    // checkpoint
    expect(md).toContain('| 64 | deflate-1 (default) | 250 | 365 | 520 | 171 | 50.0% | MISS | ok |');
    expect(md).toContain('best save 365 MB/s, best restore 520 MB/s (target 500 MB/s)');
    expect(md).toContain('not run (no bench/results/sampling.json');
    expect(md).toContain('not run (no bench/results/scaling.json');
  });

  it('reads sampling.json as flat rows or as SamplingResults', () => {
    put('sampling.json', { targetError: 0.03, rows: [{ workload: 'phases', args: ['3'], samples: 30, sampledIpc: 1.234, fullIpc: 1.25, error: -0.0128, sampledWallSeconds: 20, fullWallSeconds: 400, speedup: 20 }] });
    let md = renderSummary(dir);
    expect(md).toContain('| phases | 3 | 1.250 | 1.234 ± n/a | -1.28% | 30 | 400.0 s | 20.0 s | 20.0× |');
    expect(md).toMatch(/\| Sampling speed and error \| sampling\.json \| ok \| max abs IPC error 1\.28% \(target 3\.0%\), speedup geomean 20\.0×/);
    put('sampling.json', { generatedAt: 'g', studies: [makeResult({ validation: true })] });
    md = renderSummary(dir);
    expect(md).toContain('| workloads/build/phases | 3 1000000 | 1.250 | 1.234 ± 0.017 | -1.28% | 30 | 400.0 s | 20.0 s | 20.0× |');
    put('sampling.json', makeResult({ validation: true }));
    expect(renderSummary(dir)).toContain('| workloads/build/phases | 3 1000000 | 1.250 | 1.234 ± 0.017 |');
  });

  it('reads scaling.json (ScalingTable plus analysis)', () => {
    put('scaling.json', {
      ...SCALING,
      geoMeanFactor: 1.37,
      perWorkloadFactor: { checksum: 1.114, ptrchase: 1.429, matmul_int: 1.587 },
      summary: { meanAbsErrorGlobal: 0.139, maxAbsErrorGlobal: 0.212, meanAbsErrorPerWorkload: 0.011, maxAbsErrorPerWorkload: 0.02 },
      byLength: [{ label: '< 1M', lo: 0, hi: 1e6, rows: 3, meanAbsErrorGlobal: 0.139, meanAbsErrorGeo: 0.14, meanAbsErrorPerWorkload: 0.011 }],
    });
    const md = renderSummary(dir);
    expect(md).toContain('global hostFactor 1.350 (geomean 1.370); mean abs error 13.9% with it, 1.1% with per-workload factors');
    expect(md).toContain('| ptrchase | chase | 12,000,000 | 17.500 | 25.000 | 1.429 | -5.5% | +1.0% |');
    expect(md).toContain('| checksum | 1 | 1.114 | 1.114 | 21.2% | 0.4% |');
    expect(md).toContain('| < 1M | 3 | 13.9% | 14.0% | 1.1% |');
  });

  it('never throws: malformed JSON, odd shapes, unknown extra files', () => {
    put('kvm.json', '{ not json');
    put('atomic.json', { rows: 'nope' });
    put('o3.json', []);
    put('switch.json', { latency: { x: 3 } });
    put('checkpoint.json', null);
    put('sampling.json', { something: 'else', n: 3 });
    put('scaling.json', { rows: [{ workload: 1, hostFactor: 'x' }] });
    put('extra.json', {});
    expect(summarizeFile(dir, 'kvm').state).toBe('unreadable');
    const md = renderSummary(dir);
    expect(md).toContain('unreadable:');
    expect(md).toContain('bench/results/extra.json (not summarized)');
    expect(md).not.toMatch(/NaN|undefined|\[object Object\]/);
  });
});
