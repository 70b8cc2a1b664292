/** Runs the built `switchsim` CLI as a separate process, as a user would. */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { ROOT } from './workloads.js';

export const CLI = path.join(ROOT, 'dist/src/cli.js');

export function switchsim(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    encoding: 'buffer',
    maxBuffer: 64 * 1024 * 1024,
    timeout: 60_000,
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}
