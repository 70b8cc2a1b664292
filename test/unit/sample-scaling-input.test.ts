/** `switchsim sample --scaling FILE`: the cycle-scaling table it reads for the report and the host factor. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadScalingTable } from '../../src/sample/command.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'switchsim-scaling-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const row = {
  workload: 'matmul_int', region: 'large (150)', insts: 23806520, hostSeconds: 0.00206, hostCycles: 4326000, hostCpi: 0.182,
  o3Cycles: 24020000, o3Cpi: 1.009, hostFactor: 5.55, errorGlobal: -0.74, errorPerWorkload: -0.027, args: ['150'],
};

function file(name: string, v: unknown): string {
  const f = path.join(dir, name);
  writeFileSync(f, typeof v === 'string' ? v : JSON.stringify(v));
  return f;
}

describe('loadScalingTable', () => {
  it('keeps the table fields and the per-workload factors, drops extras', () => {
    const t = loadScalingTable(file('ok.json', { hostFreqHz: 2.1e9, globalFactor: 1.44, rows: [row], perWorkloadFactor: { matmul_int: 5.4 }, extra: 1 }));
    expect(t.globalFactor).toBe(1.44);
    expect(t.perWorkloadFactor).toEqual({ matmul_int: 5.4 });
    expect(t.rows[0]).toEqual(Object.fromEntries(Object.entries(row).filter(([k]) => k !== 'args')));
  });

  it('refuses what is not a scaling table, naming the file and the field', () => {
    expect(() => loadScalingTable(file('text.json', 'not json'))).toThrow(/--scaling: cannot read .*text\.json/);
    expect(() => loadScalingTable(file('empty.json', {}))).toThrow(/not a cycle-scaling table/);
    expect(() => loadScalingTable(file('zero.json', { hostFreqHz: 2e9, globalFactor: 0, rows: [] }))).toThrow(/not a cycle-scaling table/);
    expect(() => loadScalingTable(file('row.json', { hostFreqHz: 2e9, globalFactor: 1, rows: [{ ...row, o3Cycles: 'many' }] }))).toThrow(/rows\[0\]\.o3Cycles/);
  });
});
