/**
 * The detailed CPU against analytical expectations on a real program: the pointer chase
 * (workloads/src/ptrchase.c) makes every step one dependent load to a random element of its
 * working set, so cycles per step ≈ the latency of the level the working set fits in. Two runs
 * with N and 2N steps cancel the set-up (the cycle difference / N is the per-step cost).
 * Small caches keep the programs short: L1D 4 KiB, L2 64 KiB, DRAM 200 cycles, a TLB that covers
 * every page (no walk latency in the figures).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BASELINE_CPUID } from '../../src/detailed/cpuidTable.js';
import { runProgram } from '../../src/run.js';
import { workloadPath } from '../support/workloads.js';

const L1 = 4;
const L2 = 14;
const DRAM = 200;
const L1_BYTES = 4096;
const L2_BYTES = 65536;

const config = {
  _comment: 'small caches for the pointer-chase validation',
  mem: {
    l1d: { size: L1_BYTES, assoc: 4, hitLatency: L1, mshrs: 8 },
    l2: { size: L2_BYTES, assoc: 8, hitLatency: L2, mshrs: 16 },
    dram: { latency: DRAM },
    dtlb: { entries: 1024, assoc: 8, walkLatency: 25 },
  },
};

const dir = mkdtempSync(path.join(os.tmpdir(), 'switchsim-o3-'));
const configFile = path.join(dir, 'small.json');
writeFileSync(configFile, JSON.stringify(config));

async function cycles(wsBytes: number, steps: number): Promise<number> {
  const r = await runProgram({
    cpu: 'o3', program: workloadPath('ptrchase'), args: [String(wsBytes), String(steps)], env: [], capture: true,
    memSize: 256 << 20, cpuid: BASELINE_CPUID, o3Config: configFile,
  });
  if (r.end.kind !== 'exited' || r.end.status !== 0) throw new Error(`ptrchase failed: ${JSON.stringify(r.end)}`);
  const c = r.statList.find((s) => s.name === 'system.cpu.numCycles')?.value;
  if (typeof c !== 'number') throw new Error('no numCycles stat');
  return c;
}

async function cyclesPerStep(wsBytes: number): Promise<number> {
  const n = 4000;
  return ((await cycles(wsBytes, 2 * n)) - (await cycles(wsBytes, n))) / n;
}

describe('o3: pointer chase cycles per load follow the level the working set fits in', () => {
  it('fits in L1: ≈ the L1 hit latency (within +2 cycles of loop overhead)', async () => {
    const c = await cyclesPerStep(2048);
    expect(c).toBeGreaterThanOrEqual(L1 - 0.5);
    expect(c).toBeLessThanOrEqual(L1 + 2);
  });

  it('between L1 and L2: ≈ L1 tag + L2 latency, weighted by the L1 hit share (±20%)', async () => {
    const ws = 32768;
    const l1Share = L1_BYTES / ws;
    const expected = l1Share * L1 + (1 - l1Share) * (L1 + L2);
    const c = await cyclesPerStep(ws);
    expect(c).toBeGreaterThan(expected * 0.8);
    expect(c).toBeLessThan(expected * 1.2);
  });

  it('far beyond L2: ≈ the full memory latency (±15%)', async () => {
    const ws = 1 << 20;
    const l2Share = L2_BYTES / ws;
    const expected = l2Share * (L1 + L2) + (1 - l2Share) * (L1 + L2 + DRAM);
    const c = await cyclesPerStep(ws);
    expect(c).toBeGreaterThan(expected * 0.85);
    expect(c).toBeLessThan(expected * 1.15);
  }, 120_000);
});
