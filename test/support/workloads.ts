/** The bundled workloads (workloads/workloads.json) and their native reference runs. */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

export interface Workload {
  name: string;
  kind: 'freestanding' | 'glibc' | 'musl' | 'fault';
  args: string[];
  testArgs: string[];
  expectExit: number | string;
  description: string;
}

/** The project root: the nearest ancestor holding workloads/workloads.json (works from dist/ too). */
export const ROOT = ((): string => {
  for (let dir = import.meta.dirname; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'workloads/workloads.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no workloads/workloads.json above ${import.meta.dirname}`);
  }
})();
export const BUILD_DIR = path.join(ROOT, 'workloads/build');

export const WORKLOADS: Workload[] = JSON.parse(readFileSync(path.join(ROOT, 'workloads/workloads.json'), 'utf8')) as Workload[];

export function workloadPath(name: string): string {
  const p = path.join(BUILD_DIR, name);
  if (!existsSync(p)) throw new Error(`workload ${name} is not built (run npm run build:workloads): ${p}`);
  return p;
}

export function workload(name: string): Workload {
  const w = WORKLOADS.find((x) => x.name === name);
  if (!w) throw new Error(`no workload named ${name} in workloads.json`);
  return w;
}

export interface NativeRun {
  stdout: Buffer;
  stderr: Buffer;
  status: number | null;
  signal: NodeJS.Signals | null;
}

/** Runs a workload natively with exactly the given environment: the reference output. */
export function runNative(name: string, args: string[], env: Record<string, string> = {}): NativeRun {
  const exe = workloadPath(name);
  const r = spawnSync(exe, args, { env, maxBuffer: 256 * 1024 * 1024, argv0: exe });
  if (r.error) throw r.error;
  return { stdout: r.stdout, stderr: r.stderr, status: r.status, signal: r.signal };
}

export function envList(env: Record<string, string>): string[] {
  return Object.entries(env).map(([k, v]) => `${k}=${v}`);
}
