#!/usr/bin/env node
// Rewrites test/golden/o3/<workload>.json from the current model (run `npm run build` first).
// Use it on purpose, after a model change, and review the diff.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { runProgram } = await import(path.join(root, 'dist/src/run.js'));
const { BASELINE_CPUID } = await import(path.join(root, 'dist/src/detailed/cpuidTable.js'));
const { GOLDEN_DIR, goldenOf } = await import(path.join(root, 'dist/test/support/golden.js'));
const { WORKLOADS, workloadPath, envList } = await import(path.join(root, 'dist/test/support/workloads.js'));
mkdirSync(GOLDEN_DIR, { recursive: true });
for (const w of WORKLOADS.filter((x) => x.kind === 'freestanding' && x.name !== 'args')) {
  const r = await runProgram({
    cpu: 'o3', program: workloadPath(w.name), argv0: `/workloads/${w.name}`, args: w.testArgs, env: envList({ LANG: 'C' }), capture: true, memSize: 256 << 20, cpuid: BASELINE_CPUID,
  });
  const g = goldenOf(r.statList);
  writeFileSync(path.join(GOLDEN_DIR, `${w.name}.json`), JSON.stringify(g, null, 2) + '\n');
  console.log(`${w.name}: ${g['simInsts']} insts, ipc ${g['system.cpu.ipc']}`);
}
