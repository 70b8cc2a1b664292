/**
 * Switching stress: every workload with a known native output is moved kvm ↔ atomic ↔ o3 at
 * random points chosen by a seeded PRNG and must still
 *  - print exactly its native output (and the output of an unswitched run), exit the same way,
 *  - end in the same final state (System.stateHash: registers + every mapped user page) as an
 *    unswitched run on the atomic CPU,
 *  - leave a run timeline in which no two model intervals overlap.
 *
 * Schedules (each run names its PRNG seed in the test name, so a failure can be replayed):
 *  - syscall: every run stops after the next served syscall (RunLimit.stopAfterSyscall) and the
 *    guest moves to the next model in the rotation kvm → atomic → o3 → kvm; atomic and o3 runs
 *    are also capped by a random exact instruction count (atomic 1k–300k, o3 500–8k) so compute
 *    phases get switch points too.
 *  - random: after every stop the guest moves to a random other model: KVM runs random host-time
 *    quanta (0.1–2 ms), atomic random exact instruction counts (1k–300k), o3 small ones
 *    (500–20k: it runs ~1.5 M instructions/s); half of the runs also stop after a syscall.
 *
 * KVM quanta below 1 ms end after about 1 ms in practice (the kick is a Node timer).
 * Together the runs make over 1,000 switches (asserted by the last test).
 */
import { afterAll, expect, it } from 'vitest';
import { GLIBC_BASELINE_TUNABLES } from '../../src/run.js';
import type { ModelOutcome, RunLimit } from '../../src/switch/models.js';
import { System } from '../../src/switch/system.js';
import { CPU_MODEL_NAMES, findOverlap, type CpuModelName } from '../../src/switch/token.js';
import { describeKvm } from './support.js';
import { runNative, workload, workloadPath } from '../support/workloads.js';

const MEM = 256 * 1024 * 1024;
/** The guest's random seed (AT_RANDOM, getrandom): the same for the stressed and the reference run. */
const GUEST_SEED = 7n;
const MIN_TOTAL_SWITCHES = 1000;

interface StressCase {
  name: string;
  /** PRNG seeds of the runs with a switch after every syscall (one run each). */
  syscallSeeds: number[];
  /** PRNG seeds of the runs with random models and limits (one run each). */
  randomSeeds: number[];
  /** Whether the final state is compared with the unswitched run's (see syscalls below). */
  compareState: boolean;
}

const CASES: StressCase[] = [
  { name: 'checksum', syscallSeeds: [151], randomSeeds: [101], compareState: true },
  { name: 'qsort', syscallSeeds: [251], randomSeeds: [201], compareState: true },
  { name: 'matmul_int', syscallSeeds: [351], randomSeeds: [301], compareState: true },
  { name: 'matmul_fp', syscallSeeds: [451], randomSeeds: [401], compareState: true },
  { name: 'ptrchase', syscallSeeds: [551], randomSeeds: [501], compareState: true },
  { name: 'branchy', syscallSeeds: [651], randomSeeds: [601], compareState: true },
  { name: 'sha256', syscallSeeds: [751], randomSeeds: [701], compareState: true },
  // syscalls reads CLOCK_MONOTONIC twice and CLOCK_REALTIME (and keeps the timespecs on its
  // stack): guest time is host run time on KVM and the instruction count on the JS models, so its
  // final memory legitimately depends on which model served those calls and when. Its output
  // does not (it only checks the times are sane, e.g. that the second CLOCK_MONOTONIC read is not
  // earlier than the first, even when a switch falls between them) and is compared byte for byte.
  { name: 'syscalls', syscallSeeds: [851, 852, 853], randomSeeds: [801, 802], compareState: false },
  { name: 'args', syscallSeeds: [951], randomSeeds: [901, 902], compareState: true },
  { name: 'libc_hello', syscallSeeds: [1051], randomSeeds: [1001, 1002], compareState: true },
  { name: 'libc_hello_musl', syscallSeeds: [1151, 1152, 1153], randomSeeds: [1101, 1102], compareState: true },
];

/** mulberry32: a small seeded PRNG, so every schedule can be replayed from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const between = (rnd: () => number, lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));

function systemOptions(name: string) {
  return {
    // The same models in the reference run: the CPUID the guest sees (AT_HWCAP, glibc's choices)
    // comes from the KVM worker whenever KVM is enabled.
    models: ['kvm', 'atomic', 'o3'] as CpuModelName[],
    program: workloadPath(name),
    args: workload(name).testArgs,
    env: [] as string[],
    seed: GUEST_SEED,
    capture: true,
    memSize: MEM,
  };
}

/** The native run with the environment the System gives the guest (env: [] plus glibc steering). */
function nativeOf(name: string) {
  const env: Record<string, string> = name === 'libc_hello' ? { GLIBC_TUNABLES: GLIBC_BASELINE_TUNABLES } : {};
  return runNative(name, workload(name).testArgs, env);
}

interface Reference {
  stdout: string;
  stderr: string;
  end: ModelOutcome;
  hash: string;
}

const references = new Map<string, Promise<Reference>>();

/** The unswitched run: the whole program on the atomic CPU. */
function reference(name: string): Promise<Reference> {
  let r = references.get(name);
  if (!r) {
    r = (async () => {
      const sys = await System.create(systemOptions(name));
      try {
        await sys.start('atomic');
        const end = await sys.run();
        const { hash } = await sys.stateHash();
        const out = sys.output();
        expect(sys.switches).toHaveLength(0);
        return { stdout: out.stdout.toString(), stderr: out.stderr.toString(), end, hash };
      } finally {
        await sys.close();
      }
    })();
    references.set(name, r);
  }
  return r;
}

type Schedule = 'syscall' | 'random';

function limitFor(schedule: Schedule, model: CpuModelName, rnd: () => number): RunLimit {
  if (schedule === 'syscall') {
    if (model === 'atomic') return { stopAfterSyscall: true, insts: between(rnd, 1_000, 300_000) };
    if (model === 'o3') return { stopAfterSyscall: true, insts: between(rnd, 500, 8_000) };
    return { stopAfterSyscall: true };
  }
  const limit: RunLimit =
    model === 'kvm'
      ? { seconds: between(rnd, 100, 2_000) / 1e6 }
      : model === 'atomic'
        ? { insts: between(rnd, 1_000, 300_000) }
        : { insts: between(rnd, 500, 20_000) };
  if (rnd() < 1 / 2) limit.stopAfterSyscall = true;
  return limit;
}

function nextModel(schedule: Schedule, current: CpuModelName, rnd: () => number): CpuModelName {
  if (schedule === 'syscall') return CPU_MODEL_NAMES[(CPU_MODEL_NAMES.indexOf(current) + 1) % CPU_MODEL_NAMES.length]!;
  const others = CPU_MODEL_NAMES.filter((m) => m !== current);
  return others[Math.floor(rnd() * others.length)]!;
}

let totalSwitches = 0;
const perRun: string[] = [];

/** Runs the guest to its end under the schedule; returns how it ended and the models used. */
async function runSchedule(sys: System, schedule: Schedule, rnd: () => number, trace: string[]) {
  let current: CpuModelName = schedule === 'syscall' ? 'kvm' : CPU_MODEL_NAMES[Math.floor(rnd() * 3)]!;
  await sys.start(current);
  const used = new Set<CpuModelName>([current]);
  for (;;) {
    const limit = limitFor(schedule, current, rnd);
    const m = sys.model(current);
    const before = m.instructions();
    const out = await sys.run(limit);
    const ran = m.instructions() - before;
    trace.push(`${current} ${JSON.stringify(limit)} -> ${out.kind}${m.exactInstructions ? ` after ${ran}` : ''}`);
    if (m.exactInstructions && limit.insts !== undefined) {
      // Instruction counts are exact on the JS models: a 'limit' stop ran exactly the budget.
      if (out.kind === 'limit') expect(ran, trace.join('\n')).toBe(limit.insts);
      else expect(ran, trace.join('\n')).toBeLessThanOrEqual(limit.insts);
    }
    if (out.kind === 'exited' || out.kind === 'faulted') return { end: out, used };
    expect(out.kind, trace.join('\n')).not.toBe('m5op');
    current = nextModel(schedule, current, rnd);
    await sys.switchTo(current);
    used.add(current);
  }
}

async function stress(c: StressCase, schedule: Schedule, seed: number): Promise<void> {
  const [ref, native] = [await reference(c.name), nativeOf(c.name)];
  const sys = await System.create(systemOptions(c.name));
  /** The schedule as it happened, for failure messages. */
  const trace: string[] = [];
  const where = () => `${c.name} ${schedule} seed ${seed}, ${sys.switches.length} switches; the last runs:\n${trace.slice(-30).join('\n')}`;
  try {
    let ran: Awaited<ReturnType<typeof runSchedule>>;
    try {
      ran = await runSchedule(sys, schedule, prng(seed), trace);
    } catch (e) {
      if (e instanceof Error) e.message += `\n${where()}`;
      throw e;
    }
    const { end, used } = ran;
    // Counted before the checks: a failing run still made (and reports) its switches.
    totalSwitches += sys.switches.length;
    perRun.push(`${c.name}/${schedule}/${seed}: ${sys.switches.length}`);

    const out = sys.output();
    const ctx = `${where()}${out.stderr.length > 0 ? `\nguest stderr: ${out.stderr.toString()}` : ''}`;
    expect(out.stdout.toString(), ctx).toBe(native.stdout.toString());
    expect(out.stdout.toString(), ctx).toBe(ref.stdout);
    expect(out.stderr.toString(), ctx).toBe(native.stderr.toString());
    expect(end, ctx).toEqual({ kind: 'exited', status: native.status });
    expect(end, ctx).toEqual(ref.end);
    if (c.compareState) expect((await sys.stateHash()).hash, ctx).toBe(ref.hash);

    // The timeline: every model used ran in intervals, and no two intervals overlap.
    const intervals = sys.timeline.intervals;
    expect(sys.timeline.dropped).toBe(0);
    expect(findOverlap(intervals), ctx).toBeNull();
    for (const iv of intervals) expect(iv.endNs, ctx).toBeGreaterThanOrEqual(iv.startNs);
    expect(new Set(intervals.map((iv) => iv.model)), ctx).toEqual(used);
    expect(sys.switches.every((s) => s.from !== s.to && used.has(s.from) && used.has(s.to))).toBe(true);
  } finally {
    await sys.close();
  }
}

describeKvm('switching kvm ↔ atomic ↔ o3 at random points keeps output and final state', () => {
  for (const c of CASES) {
    for (const seed of c.syscallSeeds) {
      it(`${c.name}: a switch after every syscall, rotating kvm → atomic → o3 (seed ${seed})`, async () => {
        await stress(c, 'syscall', seed);
      });
    }
    for (const seed of c.randomSeeds) {
      it(`${c.name}: random models, KVM time quanta and exact instruction counts (seed ${seed})`, async () => {
        await stress(c, 'random', seed);
      });
    }
  }

  it(`the suite switched models at least ${MIN_TOTAL_SWITCHES} times`, () => {
    expect(totalSwitches, perRun.join('\n')).toBeGreaterThanOrEqual(MIN_TOTAL_SWITCHES);
  });

  afterAll(() => {
    console.log(`switch stress: ${totalSwitches} switches in ${perRun.length} runs\n${perRun.join('\n')}`);
  });
});
