/** Where things are, the checks that must pass before measuring, and the host description. */
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { detectHostFrequency, type HostFrequency } from '../../src/kvm/hostFreq.js';
import { BenchSetupError } from './util.js';

/** The project root: the nearest directory above this file whose package.json is switchsim's. */
export const ROOT = findRoot(import.meta.dirname);

function findRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'switchsim') return dir;
      } catch {
        /* keep looking */
      }
    }
    if (path.dirname(dir) === dir) throw new BenchSetupError(`cannot find the switchsim project root above ${start}`);
  }
}

export const BUILD_DIR = path.join(ROOT, 'workloads/build');
export const CLI = path.join(ROOT, 'dist/src/cli.js');
export const RESULTS_DIR = path.join(ROOT, 'bench/results');

export interface Workload {
  name: string;
  kind: 'freestanding' | 'glibc' | 'musl' | 'fault' | 'bench';
  args: string[];
  expectExit: number | string;
  description: string;
}

export function loadWorkloads(): Workload[] {
  const file = path.join(ROOT, 'workloads/workloads.json');
  return JSON.parse(readFileSync(file, 'utf8')) as Workload[];
}

export function workloadPath(name: string): string {
  return path.join(BUILD_DIR, name);
}

/** /dev/kvm must exist and open read-write; a clear reason otherwise. */
export function checkKvm(): void {
  if (!existsSync('/dev/kvm')) {
    throw new BenchSetupError(
      '/dev/kvm is missing: these benchmarks run programs on real KVM (hardware virtualization). ' +
        'Run on a Linux host with the kvm module loaded (or a VM with nested virtualization).',
    );
  }
  try {
    closeSync(openSync('/dev/kvm', 'r+'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new BenchSetupError(`/dev/kvm exists but cannot be opened read-write (${code}): add yourself to the kvm group or run as root.`);
  }
}

/** The build outputs the benchmarks need; tells the user to build when one is missing. */
export function checkBuilt(workloads: readonly string[]): void {
  const missing: string[] = [];
  for (const f of [CLI, path.join(ROOT, 'dist/src/kvm/worker.js')]) if (!existsSync(f)) missing.push(path.relative(ROOT, f));
  for (const w of new Set(workloads)) if (!existsSync(workloadPath(w))) missing.push(path.relative(ROOT, workloadPath(w)));
  if (missing.length) {
    throw new BenchSetupError(`not built: ${missing.join(', ')}. Run \`npm run build\` (TypeScript and workloads) first.`);
  }
}

export interface HostInfo {
  cpuModel: string;
  logicalCpus: number;
  hostFreq: HostFrequency;
  kernel: string;
  node: string;
  kvmModules: string;
  loadAverageAtStart: number[];
  totalMemGiB: number;
}

export function describeHost(): HostInfo {
  let cpuModel = os.cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m?.[1]) cpuModel = m[1].trim();
  } catch {
    /* keep os.cpus() */
  }
  return {
    cpuModel,
    logicalCpus: os.cpus().length,
    hostFreq: detectHostFrequency(),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    kvmModules: kvmModules(),
    loadAverageAtStart: os.loadavg(),
    totalMemGiB: os.totalmem() / 1024 ** 3,
  };
}

function kvmModules(): string {
  try {
    const lines = readFileSync('/proc/modules', 'utf8')
      .split('\n')
      .filter((l) => /^kvm/.test(l))
      .map((l) => l.split(' ').slice(0, 2).join(' ') + ' B');
    if (lines.length) return lines.join(', ') + ' (/proc/modules)';
    return 'none listed in /proc/modules';
  } catch {
    try {
      const mods = readdirSync('/sys/module').filter((m) => m.startsWith('kvm'));
      if (mods.length) return `${mods.join(', ')} (/sys/module; /proc/modules not present)`;
    } catch {
      /* fall through */
    }
    return 'not visible (no /proc/modules, no kvm* in /sys/module)';
  }
}
