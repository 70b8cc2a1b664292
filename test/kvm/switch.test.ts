/**
 * Switching with real KVM: the execution token refuses a second model (on this thread, through
 * a second CPU object, and inside the KVM worker before KVM_RUN), corrupted handoff records are
 * refused naming their bad field, m5op regions of interest move the guest kvm → o3 → kvm with
 * exact stats, and guest time stays monotonic across a switch.
 */
import { Packr } from 'msgpackr';
import { expect, it } from 'vitest';
import { AtomicCPU } from '../../src/detailed/atomicCpu.js';
import { decodeThreadContext, encodeThreadContext } from '../../src/guest/contextCodec.js';
import { ProcessStateFormatError } from '../../src/guest/errors.js';
import { decodeProcessState, encodeProcessState } from '../../src/guest/processCodec.js';
import { ThreadContextFormatError } from '../../src/guest/threadContext.js';
import { NotAllowedError } from '../../src/kvm/client.js';
import type { Stat } from '../../src/stats.js';
import { drive, type DriveResult } from '../../src/switch/driver.js';
import type { AtomicModel, Handoff, KvmModel } from '../../src/switch/models.js';
import { System } from '../../src/switch/system.js';
import { ConcurrentExecutionError, findOverlap, type CpuModelName } from '../../src/switch/token.js';
import { describeKvm } from './support.js';
import { runNative, workload, workloadPath } from '../support/workloads.js';

const MEM = 256 * 1024 * 1024;
const ALL: CpuModelName[] = ['kvm', 'atomic', 'o3'];

function create(name: string, args = workload(name).testArgs, models = ALL): Promise<System> {
  return System.create({ models, program: workloadPath(name), args, env: [], seed: 5n, capture: true, memSize: MEM });
}

/** Runs the current model to the end of the guest. */
async function finish(sys: System) {
  for (;;) {
    const out = await sys.run();
    if (out.kind === 'exited' || out.kind === 'faulted') return out;
  }
}

function nativeOutput(name: string, args = workload(name).testArgs): string {
  return runNative(name, args, {}).stdout.toString();
}

/** checksum long enough (~75 M instructions, tens of ms on KVM) not to end inside a short KVM run. */
const LONG = ['5000000'];

describeKvm('the execution token refuses a second model', () => {
  it('token.acquire for atomic while KVM holds it throws ConcurrentExecutionError; the run goes on', async () => {
    const sys = await create('checksum', LONG);
    try {
      await sys.start('kvm');
      expect(sys.token.holder).toBe('kvm');
      await sys.run({ seconds: 0.001 });
      for (const other of ['atomic', 'o3'] as const) {
        let err: unknown;
        try {
          sys.token.acquire(other);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(ConcurrentExecutionError);
        expect((err as ConcurrentExecutionError).holder).toBe('kvm');
        expect((err as Error).message).toBe(`${other} tried to take the token while kvm holds the execution token`);
      }
      expect(sys.token.holder).toBe('kvm');
      expect(await finish(sys)).toEqual({ kind: 'exited', status: 0 });
      expect(sys.output().stdout.toString()).toBe(nativeOutput('checksum', LONG));
    } finally {
      await sys.close();
    }
  });

  it('a second atomic CPU on the same guest cannot run while KVM holds the token, nor while the System\'s atomic model does', async () => {
    const sys = await create('checksum', LONG);
    try {
      await sys.start('kvm');
      expect((await sys.run({ seconds: 0.001 })).kind).toBe('limit');
      const intruder = (model: CpuModelName) =>
        new AtomicCPU({ aspace: sys.process.aspace, process: sys.process, cpuid: sys.cpuid, freqHz: sys.freqHz, warn: () => {}, token: { token: sys.token, model } });
      const a = intruder('atomic');
      expect(() => a.run(1)).toThrow(ConcurrentExecutionError);
      expect(() => a.run(1)).toThrow(/atomic tried to run guest instructions while kvm holds the execution token/);
      expect(a.instructions).toBe(0);

      await sys.switchTo('atomic');
      expect(sys.token.holder).toBe('atomic');
      await sys.run({ insts: 10_000 });
      // Now the System's own atomic model holds it: an o3-named CPU is refused, and so is KVM.
      expect(() => intruder('o3').run(1)).toThrow(/o3 tried to run guest instructions while atomic holds/);
      await expect((sys.model('kvm') as KvmModel).client.run()).rejects.toThrow();

      await sys.switchTo('kvm');
      expect(await finish(sys)).toEqual({ kind: 'exited', status: 0 });
      expect(sys.output().stdout.toString()).toBe(nativeOutput('checksum', LONG));
    } finally {
      await sys.close();
    }
  });

  it('the KVM worker refuses KVM_RUN unless KVM holds the token; the System then finishes on KVM', async () => {
    const sys = await create('syscalls');
    try {
      await sys.start('kvm');
      expect((await sys.run({ stopAfterSyscall: true })).kind).toBe('syscall');
      const client = (sys.model('kvm') as KvmModel).client;

      // Switched out to atomic: the vCPU is refused a run (its state says another model has the guest).
      await sys.switchTo('atomic');
      expect((await sys.run({ insts: 5_000 })).kind).toBe('limit');
      const refused = await client.run().then(
        () => null,
        (e: unknown) => e,
      );
      expect(refused).toBeInstanceOf(NotAllowedError);
      expect((refused as Error).message).toBe("KVM CPU: 'run' is not allowed in state 'switchedOut'");
      expect(sys.token.holder).toBe('atomic');

      // Back on KVM and runnable (paused), but with the token moved away behind the System's back:
      // the worker's own token check refuses KVM_RUN, naming the error and the holder.
      await sys.switchTo('kvm');
      expect((await sys.run({ stopAfterSyscall: true })).kind).toBe('syscall');
      sys.token.release('kvm');
      sys.token.acquire('o3');
      const out = sys.output().stdout.length;
      await expect(client.run()).rejects.toThrow(/ConcurrentExecutionError: kvm tried to run guest instructions while o3 holds the execution token/);
      expect(sys.output().stdout.length).toBe(out);
      // The refusal ran nothing: with the token back, the guest finishes with its native output.
      sys.token.release('o3');
      sys.token.acquire('kvm');
      expect(await finish(sys)).toEqual({ kind: 'exited', status: 0 });
      expect(sys.output().stdout.toString()).toBe(nativeOutput('syscalls'));
      expect(findOverlap(sys.timeline.intervals)).toBeNull();
    } finally {
      await sys.close();
    }
  });
});

const packr = new Packr({ useRecords: false, moreTypes: false });
type Rec = Record<string, unknown>;

/** Re-encodes a msgpack record after `edit` changed a copy of it. */
function corrupt(bytes: Uint8Array, edit: (r: Rec) => void): Uint8Array {
  const r = packr.unpack(bytes) as Rec;
  edit(r);
  return packr.pack(r);
}

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
}

describeKvm('handoff records are validated: a corrupted one is refused naming its field', () => {
  /** A real handoff from KVM, mid-run. */
  async function kvmHandoff(): Promise<{ sys: System; handoff: Handoff }> {
    const sys = await create('checksum', LONG);
    await sys.start('kvm');
    await sys.run({ seconds: 0.001 });
    const { handoff } = await sys.snapshot();
    return { sys, handoff };
  }

  it('ThreadContext: wrong version, missing and mistyped fields', async () => {
    const { sys, handoff } = await kvmHandoff();
    try {
      const tc = handoff.threadContext;
      expect(decodeThreadContext(tc).rip).toBeGreaterThan(0n);
      const cases: [string, (r: Rec) => void, string][] = [
        ['wrong version', (r) => (r.v = 99), 'version'],
        ['no version', (r) => delete r.v, 'version'],
        ['no registers', (r) => delete r.regs, 'regs'],
        ['registers of the wrong size', (r) => (r.regs = new Uint8Array(8)), 'regs'],
        ['segments as a string', (r) => (r.seg = 'cs'), 'seg'],
        ['no xmm', (r) => delete r.xmm, 'xmm'],
        ['mxcsr as a string', (r) => (r.mxcsr = '0x1f80'), 'mxcsr'],
        ['x87 words missing one', (r) => (r.x87 = [0x37f, 0, 0]), 'x87'],
        ['a segment selector out of range', (r) => ((r.seg as number[])[0] = 0x1_0000), 'seg.cs'],
      ];
      for (const [what, edit, field] of cases) {
        const e = thrown(() => decodeThreadContext(corrupt(tc, edit)));
        expect(e, what).toBeInstanceOf(ThreadContextFormatError);
        expect((e as ThreadContextFormatError).field, what).toBe(field);
        expect((e as Error).message, what).toContain(`bad thread context (${field})`);
      }
      const notMsgpack = thrown(() => decodeThreadContext(tc.subarray(0, tc.length >> 1)));
      expect(notMsgpack).toBeInstanceOf(ThreadContextFormatError);
      expect((notMsgpack as ThreadContextFormatError).field).toBe('(encoding)');
      expect((thrown(() => decodeThreadContext(packr.pack(7))) as ThreadContextFormatError).field).toBe('(root)');
      // The untouched record still decodes to the same context.
      expect(encodeThreadContext(decodeThreadContext(corrupt(tc, () => {})))).toEqual(encodeThreadContext(decodeThreadContext(tc)));
    } finally {
      await sys.close();
    }
  });

  it('ProcessState: wrong version, missing and mistyped fields', async () => {
    const { sys, handoff } = await kvmHandoff();
    try {
      const ps = handoff.processState;
      const size = sys.phys.size;
      expect(decodeProcessState(ps, size).identity.pid).toBeGreaterThan(0);
      const cases: [string, (r: Rec) => void, string][] = [
        ['wrong version', (r) => (r.version = 2), 'version'],
        ['no version', (r) => delete r.version, 'version'],
        ['no identity', (r) => delete r.identity, 'identity'],
        ['pid as a string', (r) => ((r.identity as Rec).pid = '1'), 'identity.pid'],
        ['no exe path', (r) => delete (r.identity as Rec).exePath, 'identity.exePath'],
        ['no address space', (r) => delete r.addressSpace, 'addressSpace'],
        ['random state of the wrong length', (r) => (r.random = [1, 2, 3]), 'random'],
        ['umask as a string', (r) => (r.umask = '022'), 'umask'],
        ['rlimits missing', (r) => delete r.rlimits, 'rlimits'],
        ['signals as a number', (r) => (r.signals = 0), 'signals'],
        ['exit status out of range', (r) => (r.exitStatus = 300), 'exitStatus'],
      ];
      for (const [what, edit, field] of cases) {
        const e = thrown(() => decodeProcessState(corrupt(ps, edit), size));
        expect(e, what).toBeInstanceOf(ProcessStateFormatError);
        expect((e as ProcessStateFormatError).field, what).toBe(field);
        expect((e as Error).message, what).toContain(`bad process state (${field})`);
      }
      expect((thrown(() => decodeProcessState(ps.subarray(0, ps.length >> 1), size)) as ProcessStateFormatError).field).toBe('(encoding)');
      expect((thrown(() => decodeProcessState(packr.pack('state'), size)) as ProcessStateFormatError).field).toBe('(root)');
      expect(encodeProcessState(decodeProcessState(corrupt(ps, () => {}), size))).toEqual(encodeProcessState(decodeProcessState(ps, size)));
    } finally {
      await sys.close();
    }
  });

  it('every model refuses a corrupted handoff in takeOverFrom (the KVM worker too), and the run goes on', async () => {
    const sys = await create('checksum', LONG);
    try {
      await sys.start('kvm');
      expect((await sys.run({ seconds: 0.001 })).kind).toBe('limit');
      await sys.switchTo('atomic');
      await sys.run({ insts: 20_000 });
      const { handoff } = await sys.snapshot();
      const badTc = corrupt(handoff.threadContext, (r) => (r.v = 2));
      const badPs = corrupt(handoff.processState, (r) => ((r.identity as Rec).pid = -1));

      // The KVM worker (switched out) decodes the records itself: the refusal crosses the thread.
      const client = (sys.model('kvm') as KvmModel).client;
      await expect(client.takeOver(badTc, handoff.processState)).rejects.toThrow(/bad thread context \(version\)/);
      await expect(client.takeOver(handoff.threadContext, badPs)).rejects.toThrow(/bad process state \(identity\.pid\)/);

      // o3 (idle) refuses on this thread with the typed errors.
      const o3 = sys.model('o3');
      expect(() => o3.takeOverFrom({ threadContext: handoff.threadContext, processState: badPs })).toThrow(ProcessStateFormatError);
      expect(o3.state).toBe('idle');

      // The guest is unharmed: on to KVM and to the end.
      expect((sys.model('atomic') as AtomicModel).state).not.toBe('idle');
      await sys.switchTo('kvm');
      expect(await finish(sys)).toEqual({ kind: 'exited', status: 0 });
      expect(sys.output().stdout.toString()).toBe(nativeOutput('checksum', LONG));
    } finally {
      await sys.close();
    }
  });
});

function stat(dump: readonly Stat[], name: string): number {
  const s = dump.find((x) => x.name === name);
  if (!s) throw new Error(`no stat ${name} in the dump (${dump.map((x) => x.name).join(', ')})`);
  return Number(s.value);
}

/** The region's instruction count measured by an unswitched atomic run (reset_stats → dump_stats). */
async function atomicRegionInsts(name: string, args: string[]): Promise<number> {
  const sys = await create(name, args);
  try {
    const r = await drive(sys, { sequence: ['atomic'] });
    expect(r.end).toEqual({ kind: 'exited', status: 0 });
    expect(r.dumps).toHaveLength(1);
    return stat(r.dumps[0]!, 'system.atomic_cpu.committedInsts');
  } finally {
    await sys.close();
  }
}

describeKvm('m5op regions of interest on KVM: kvm → o3 for the region, exact stats', () => {
  // matmul_int marks its multiply (not its set-up and checks) as the region of interest.
  const NAME = 'matmul_int';

  for (const form of ['inst', 'addr'] as const) {
    it(`--m5=${form}: work_begin switches to o3, the dump counts exactly the region, work_end switches back`, async () => {
      const args = [...workload(NAME).testArgs, `--m5=${form}`];
      const expectedInsts = await atomicRegionInsts(NAME, args);
      expect(expectedInsts).toBeGreaterThan(1_000);
      const sys = await create(NAME, args);
      let r: DriveResult;
      try {
        r = await drive(sys, { sequence: ['kvm', 'o3'], roi: { detailed: 'o3', after: 'continue' } });
        // The m5op flag is removed from argv by the workload: the output is its plain native run's.
        expect(sys.output().stdout.toString()).toBe(nativeOutput(NAME));
        expect(r.end).toEqual({ kind: 'exited', status: 0 });
        expect(sys.switches.map((s) => `${s.from}>${s.to}`)).toEqual(['kvm>o3', 'o3>kvm']);
        expect(findOverlap(sys.timeline.intervals)).toBeNull();
        expect(new Set(sys.timeline.intervals.map((i) => i.model))).toEqual(new Set(['kvm', 'o3']));
      } finally {
        await sys.close();
      }
      const events = r.events.map((e) => [e.model, e.what.replace(/ \(switch [\d.]+ ms\)$/, '')]);
      expect(events).toEqual([
        ['kvm', 'start on kvm'],
        ['o3', 'm5 work_begin: region of interest on o3'],
        ['o3', 'm5 reset_stats'],
        ['o3', 'm5 dump_stats'],
        ['kvm', 'm5 work_end: back to kvm'],
      ]);
      expect(r.dumps).toHaveLength(1);
      expect(stat(r.dumps[0]!, 'system.o3_cpu.committedInsts')).toBe(expectedInsts);
    });
  }

  it("roi.after 'exit' stops at work_end with kind roiDone, after one dump", async () => {
    const args = [...workload(NAME).testArgs, '--m5=inst'];
    const expectedInsts = await atomicRegionInsts(NAME, args);
    const sys = await create(NAME, args);
    try {
      const r = await drive(sys, { sequence: ['kvm', 'o3'], roi: { detailed: 'o3', after: 'exit' } });
      expect(r.end).toEqual({ kind: 'roiDone' });
      expect(r.events.map((e) => e.what.replace(/ \(switch [\d.]+ ms\)$/, ''))).toEqual([
        'start on kvm',
        'm5 work_begin: region of interest on o3',
        'm5 reset_stats',
        'm5 dump_stats',
        'm5 work_end: region of interest done, stopping',
      ]);
      expect(r.dumps).toHaveLength(1);
      expect(stat(r.dumps[0]!, 'system.o3_cpu.committedInsts')).toBe(expectedInsts);
      expect(sys.current).toBe('o3');
      expect(sys.state).toBe('running');
      // What it printed is a prefix of the full output.
      expect(nativeOutput(NAME).startsWith(sys.output().stdout.toString())).toBe(true);
    } finally {
      await sys.close();
    }
  });
  // The m5 exit and fail ops are not exercised here: no bundled workload calls them
  // (workloads/runtime/rt.c uses only work_begin/reset_stats/dump_stats/work_end).
});

describeKvm('guest time across switches', () => {
  it('CLOCK_MONOTONIC does not go backwards when the guest moves from KVM to atomic between two reads', async () => {
    // syscalls reads CLOCK_MONOTONIC twice in a row and checks t1 >= t0 (else it prints
    // "FAIL: CLOCK_MONOTONIC went backwards" and exits 1). Serve the first read on KVM, then
    // move the guest to atomic for the second.
    const sys = await create('syscalls');
    try {
      await sys.start('kvm');
      const client = (sys.model('kvm') as KvmModel).client;
      while (((await client.stats()).syscallsByName['clock_gettime'] ?? 0) < 1) {
        expect((await sys.run({ stopAfterSyscall: true })).kind).toBe('syscall');
      }
      await sys.switchTo('atomic');
      const end = await finish(sys);
      expect(sys.output().stderr.toString()).toBe('');
      expect(sys.output().stdout.toString()).toBe(nativeOutput('syscalls'));
      expect(end).toEqual({ kind: 'exited', status: 0 });
    } finally {
      await sys.close();
    }
  });
});
