/**
 * Timed child processes. Wall time is measured around spawnSync; CPU time (user+sys) and minor
 * page faults come from getrusage(RUSAGE_CHILDREN) before and after (children are run one at
 * a time and always reaped by spawnSync, so the difference is exactly this child's usage,
 * including all of its threads).
 */
import { spawnSync } from 'node:child_process';
import koffi from 'koffi';

const RUSAGE_CHILDREN = -1;
const RUSAGE_BYTES = 144; // struct rusage on x86-64: 2 timevals + 14 longs

interface Usage {
  user: number;
  sys: number;
  minflt: number;
}

let getrusage: ((who: number, buf: Buffer) => number) | undefined;

function childUsage(): Usage {
  if (!getrusage) {
    const fn = koffi.load('libc.so.6').func('getrusage', 'int', ['int', 'void *']);
    getrusage = (who, buf) => fn(who, buf) as number;
  }
  const buf = Buffer.alloc(RUSAGE_BYTES);
  if (getrusage(RUSAGE_CHILDREN, buf) !== 0) throw new Error(`getrusage failed (errno ${koffi.errno()})`);
  const tv = (off: number) => Number(buf.readBigInt64LE(off)) + Number(buf.readBigInt64LE(off + 8)) / 1e6;
  return { user: tv(0), sys: tv(16), minflt: Number(buf.readBigInt64LE(64)) };
}

export interface ProcRun {
  wallSeconds: number;
  userSeconds: number;
  sysSeconds: number;
  /** user + sys */
  cpuSeconds: number;
  minorFaults: number;
  status: number | null;
  signal: string | null;
  stdout: Buffer;
  stderr: Buffer;
}

export function timedSpawn(file: string, args: readonly string[], env: NodeJS.ProcessEnv, argv0?: string): ProcRun {
  const before = childUsage();
  const t0 = performance.now();
  const r = spawnSync(file, args, {
    env,
    ...(argv0 ? { argv0 } : {}),
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 512 * 1024 * 1024,
  });
  const t1 = performance.now();
  const after = childUsage();
  if (r.error) throw r.error;
  const user = after.user - before.user;
  const sys = after.sys - before.sys;
  return {
    wallSeconds: (t1 - t0) / 1000,
    userSeconds: user,
    sysSeconds: sys,
    cpuSeconds: user + sys,
    minorFaults: after.minflt - before.minflt,
    status: r.status,
    signal: r.signal,
    stdout: r.stdout,
    stderr: r.stderr,
  };
}

export function describeEnd(r: ProcRun): string {
  return r.signal ? `killed by ${r.signal}` : `exit ${r.status}`;
}
