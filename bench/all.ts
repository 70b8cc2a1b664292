/**
 * `npm run bench`: every benchmark in turn, then the summary (bench/summary.ts) of whatever they
 * wrote. A failing step does not stop the rest (an `&&` chain skipped the summary when one step
 * failed); the failures are listed at the end and the exit status is 1.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const here = import.meta.dirname;

const STEPS: { name: string; script: string; args?: string[] }[] = [
  { name: 'KVM vs native', script: 'run.js' },
  { name: 'atomic speed', script: 'speed.js', args: ['--cpu=atomic'] },
  { name: 'o3 speed', script: 'speed.js', args: ['--cpu=o3'] },
  { name: 'checkpoints', script: 'checkpoint.js' },
  { name: 'switch latency', script: 'switch.js' },
  { name: 'cycle scaling', script: 'scaling.js' },
  { name: 'sampling', script: 'sampling.js' },
];

function run(script: string, args: string[] = []): number {
  const r = spawnSync(process.execPath, [path.join(here, script), ...args], { stdio: 'inherit' });
  if (r.error) {
    process.stderr.write(`bench: ${script}: ${r.error.message}\n`);
    return 1;
  }
  return r.status ?? 1;
}

const failed: string[] = [];
for (const s of STEPS) {
  process.stderr.write(`\nbench: ${s.name} (${s.script}${s.args ? ' ' + s.args.join(' ') : ''})\n`);
  const status = run(s.script, s.args);
  if (status !== 0) failed.push(`${s.name}: exit ${status}`);
}
if (run('summary.js') !== 0) failed.push('summary: failed');
if (failed.length > 0) {
  process.stderr.write(`\nbench: ${failed.length} step(s) failed:\n${failed.map((f) => `  - ${f}`).join('\n')}\n`);
  process.exitCode = 1;
}
