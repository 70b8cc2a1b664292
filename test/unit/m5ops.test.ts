/**
 * gem5 m5ops on the JS CPU models: both forms (0F 04 imm16 and an access to the m5op window),
 * identical on the atomic and o3 CPUs. exit/fail end the guest; every other known op completes
 * its instruction and stops the model at an exact instruction count; unknown ops warn once and
 * are ignored. The drivers record every op, reset stats at reset_stats and dump at dump_stats.
 */
import { describe, expect, it } from 'vitest';
import { AtomicCPU, type AtomicOutcome } from '../../src/detailed/atomicCpu.js';
import { o3Config } from '../../src/detailed/o3/config.js';
import { buildO3, runO3Program, type O3Run } from '../../src/detailed/o3/runO3.js';
import { FunctionalStream } from '../../src/detailed/o3/trace.js';
import { tracingMemory, type TracingMemory } from '../../src/detailed/o3/tracingMemory.js';
import { runAtomicProgram, type AtomicRun, type M5Event } from '../../src/detailed/runAtomic.js';
import { BASELINE_CPUID } from '../../src/detailed/cpuidTable.js';
import { AddressSpace } from '../../src/guest/addressSpace.js';
import { M5OP_PHYS, M5OP_SIZE, M5OP_VADDR } from '../../src/guest/layout.js';
import { M5Op, type M5OpCall } from '../../src/guest/m5ops.js';
import { PROT_EXEC, PROT_READ, PROT_WRITE } from '../../src/guest/pageTables.js';
import { allocatePhysicalMemory } from '../../src/guest/physmem.js';
import { Gpr, initialThreadContext } from '../../src/guest/threadContext.js';
import { prepareRun, type RunOptions } from '../../src/run.js';
import type { Stat } from '../../src/stats.js';
import { envList, runNative, workload, workloadPath } from '../support/workloads.js';

const CODE = 0x40_0000;
const DATA = 0x60_0000;
const STACK = 0x70_0000;

function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ''), 'hex');
}

/** `mov eax, imm32` of an m5op-window (or any) address, little endian. */
function movEax(addr: number): string {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(addr >>> 0);
  return `b8 ${b.toString('hex')}`;
}
const m5addr = (func: number) => M5OP_VADDR + func * 256;
/** Instruction form: 0F 04 imm16. */
const m5inst = (func: number) => `0f04 ${(func & 0xff).toString(16).padStart(2, '0')}${(func >> 8).toString(16).padStart(2, '0')}`;
/** Address form: mov eax, addr; mov rax, [rax]. */
const m5load = (func: number) => `${movEax(m5addr(func))} 488b00`;

function machine(code: string, opts: { tracing?: boolean } = {}) {
  const aspace = new AddressSpace(allocatePhysicalMemory(16 << 20, 'shared'));
  aspace.mapFixed(CODE, 0x1000, PROT_READ | PROT_EXEC, 'mmap', '[code]');
  aspace.mapFixed(DATA, 0x1000, PROT_READ | PROT_WRITE, 'mmap', '[data]');
  aspace.mapFixed(STACK, 0x2000, PROT_READ | PROT_WRITE, 'mmap', '[stack]');
  aspace.mapIo(M5OP_VADDR, M5OP_PHYS, M5OP_SIZE, PROT_READ | PROT_WRITE, '[m5op]');
  aspace.writeUnchecked(CODE, hex(code));
  const warnings: string[] = [];
  let tracing: TracingMemory | undefined;
  const cpu = new AtomicCPU({
    aspace,
    warn: (m) => warnings.push(m),
    ...(opts.tracing ? { memory: (a: AddressSpace) => (tracing = tracingMemory(a)) } : {}),
  });
  cpu.setThreadContext(initialThreadContext(BigInt(CODE), BigInt(STACK + 0x1000)));
  return { cpu, warnings, tracing };
}

const rax = (cpu: AtomicCPU) => cpu.s.getReg64(Gpr.rax);

/** Runs to the end in slices of `slice`, checking no call exceeds it; the m5op stops with their counts. */
function runAll(cpu: AtomicCPU, slice: number): { stops: { call: M5OpCall; instructions: number }[]; end: AtomicOutcome } {
  const stops: { call: M5OpCall; instructions: number }[] = [];
  for (;;) {
    const before = cpu.instructions;
    const out = cpu.run(slice);
    expect(cpu.instructions - before).toBeLessThanOrEqual(slice);
    if (out.kind === 'm5op') stops.push({ call: out.call, instructions: cpu.instructions });
    else if (out.kind !== 'limit') return { stops, end: out };
  }
}

describe('atomic CPU: instruction form (0F 04 imm16)', () => {
  // mov edi, 7; mov esi, 9; mov eax, 5; work_begin; add eax, 1; exit
  const code = `bf07000000 be09000000 b805000000 ${m5inst(M5Op.workBegin)} 83c001 ${m5inst(M5Op.exit)}`;

  it('completes the instruction (rax = 0, rip past it, counted once), then stops with the call', () => {
    const { cpu, warnings } = machine(code);
    const out = cpu.run(100);
    expect(out).toEqual({ kind: 'm5op', call: { func: 0x5a, name: 'work_begin', args: [7n, 9n], form: 'inst' } });
    expect(cpu.instructions).toBe(4);
    expect(cpu.s.rip).toBe(CODE + 19);
    expect(rax(cpu)).toBe(0n);
    // The next run continues after it.
    expect(cpu.run(100)).toEqual({ kind: 'exited', status: 0 });
    expect(cpu.instructions).toBe(6);
    expect(cpu.s.rip).toBe(CODE + 26);
    expect(rax(cpu)).toBe(0n); // exit's rax
    expect(cpu.exitCode).toBe(0);
    expect(warnings).toEqual([]);
  });

  it('budgets stay exact: any slicing stops at the same count, as many instructions as with a plain instruction there', () => {
    const plain = machine(code.replace(m5inst(M5Op.workBegin), '0f1f4000' /* 4-byte nop */));
    const p = runAll(plain.cpu, 1000);
    expect(p.stops).toEqual([]);
    for (let k = 1; k <= 7; k++) {
      const { cpu } = machine(code);
      const r = runAll(cpu, k);
      expect(r.stops.map((s) => [s.call.name, s.instructions])).toEqual([['work_begin', 4]]);
      expect(r.end).toEqual({ kind: 'exited', status: 0 });
      expect(cpu.instructions).toBe(plain.cpu.instructions);
    }
  });
});

describe('atomic CPU: address form (access to M5OP_VADDR + (func << 8))', () => {
  // mov edi, 7; mov esi, 9; mov eax, 0xffff5a00; mov rax, [rax] (work_begin); add eax, 1; exit (address form)
  const code = `bf07000000 be09000000 ${m5load(M5Op.workBegin)} 83c001 ${m5load(M5Op.exit)} 0f0b`;

  it('serves the access with 0, re-executes that one instruction, then stops with the call', () => {
    const { cpu, warnings } = machine(code);
    const out = cpu.run(100);
    expect(out).toEqual({ kind: 'm5op', call: { func: 0x5a, name: 'work_begin', args: [7n, 9n], form: 'addr' } });
    expect(cpu.instructions).toBe(4);
    expect(cpu.s.rip).toBe(CODE + 18);
    expect(rax(cpu)).toBe(0n);
    expect(cpu.run(100)).toEqual({ kind: 'exited', status: 0 });
    expect(rax(cpu)).toBe(0n);
    // The exit load completes like any m5op instruction (as the instruction form's does).
    expect(cpu.instructions).toBe(7);
    expect(warnings).toEqual([]);
  });

  it('budgets stay exact: any slicing stops at the same count, as many instructions as a plain load there', () => {
    // The same program with a load from ordinary memory in place of work_begin.
    const plainCode = code.replace(m5load(M5Op.workBegin), m5load(0).replace(movEax(m5addr(0)), movEax(DATA)));
    const plain = machine(plainCode);
    const p = runAll(plain.cpu, 1000);
    expect(p.stops).toEqual([]);
    expect(p.end).toEqual({ kind: 'exited', status: 0 });
    for (let k = 1; k <= 8; k++) {
      const { cpu } = machine(code);
      const r = runAll(cpu, k);
      expect(r.stops.map((s) => [s.call.name, s.instructions])).toEqual([['work_begin', 4]]);
      expect(r.end).toEqual({ kind: 'exited', status: 0 });
      expect(cpu.instructions).toBe(plain.cpu.instructions);
    }
  });
});

describe('atomic CPU: exit, fail and unknown functions', () => {
  it.each(['inst', 'addr'] as const)('fail(delay, code) exits with code & 0xff from rsi (%s form)', (form) => {
    // mov edi, 3; mov esi, 0x1234; fail
    const op = form === 'inst' ? m5inst(M5Op.fail) : m5load(M5Op.fail);
    const { cpu } = machine(`bf03000000 be34120000 ${op} 0f0b`);
    expect(cpu.run(100)).toEqual({ kind: 'exited', status: 0x34 });
    expect(cpu.exitCode).toBe(0x34);
  });

  it.each(['inst', 'addr'] as const)('exit exits with status 0 whatever the arguments (%s form)', (form) => {
    const op = form === 'inst' ? m5inst(M5Op.exit) : m5load(M5Op.exit);
    const { cpu } = machine(`bf03000000 be34120000 ${op} 0f0b`);
    expect(cpu.run(100)).toEqual({ kind: 'exited', status: 0 });
  });

  it('an unknown function warns once naming its number, sets rax = 0 and does not stop the run', () => {
    // mov ecx, 3; L: mov eax, 5; m5op 0x99 (inst); mov ebx, eax; mov eax, 0xffff7700; mov rax, [rax]; add ebx, eax; dec ecx; jnz L; exit
    const body = `b805000000 ${m5inst(0x99)} 89c3 ${m5load(0x77)} 01c3 ffc9`;
    const len = hex(body).length + 2;
    const code = `b903000000 ${body} 75${(256 - len).toString(16)} ${m5inst(M5Op.exit)}`;
    const { cpu, warnings } = machine(code);
    expect(cpu.run(1000)).toEqual({ kind: 'exited', status: 0 });
    expect(cpu.s.getReg64(Gpr.rbx)).toBe(0n);
    expect(cpu.instructions).toBe(1 + 3 * 8 + 1);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/0x99/);
    expect(warnings[1]).toMatch(/0x77/);
  });
});

// o3 snippet: work_begin (inst), a loop, reset_stats (addr), a loop, dump_stats (inst), exit.
const O3_SNIPPET = [
  'bf07000000 be09000000',
  m5inst(M5Op.workBegin),
  'b932000000 83c001 ffc9 75f9', // mov ecx, 50; L: add eax, 1; dec ecx; jnz L
  m5load(M5Op.resetStats),
  'b914000000 c7042500006000 01000000 83c001 ffc9 75ee', // mov ecx, 20; L: mov dword [DATA], 1; add eax, 1; dec ecx; jnz L
  m5inst(M5Op.dumpStats),
  m5inst(M5Op.exit),
].join(' ');

describe('o3 CPU: an m5op is serializing and non-speculative', () => {
  it('run() returns drained at the op (the op committed), the pause holds until taken, counts match the atomic CPU', () => {
    const ref = machine(O3_SNIPPET);
    const refRun = runAll(ref.cpu, 1e6);
    expect(refRun.stops.map((s) => s.call.name)).toEqual(['work_begin', 'reset_stats', 'dump_stats']);
    expect(refRun.stops.map((s) => s.instructions)).toEqual([3, 3 + 1 + 150 + 2, 3 + 1 + 150 + 2 + 1 + 80 + 1]);

    const { cpu, tracing } = machine(O3_SNIPPET, { tracing: true });
    const stream = new FunctionalStream(cpu, tracing!);
    const o3 = buildO3(o3Config({}), stream);
    const seen: [string, number][] = [];
    let committed = 0;
    for (let guard = 0; guard < 100 && !stream.outcome; guard++) {
      committed += o3.run().insts;
      if (!o3.drainedAtPause) continue;
      // Everything handed out, the m5op included, has committed; fetch stopped after it.
      expect(o3.rob.decodedSeq).toBe(o3.rob.committedSeq);
      expect(committed).toBe(cpu.instructions);
      // Until the driver takes it, the pipeline stays where it is.
      expect(o3.run().insts).toBe(0);
      const call = stream.takeM5op()!;
      seen.push([call.name, committed]);
      if (call.func === M5Op.resetStats) o3.resetStats();
      if (call.func === M5Op.dumpStats) {
        const st = new Map(o3.stats().map((s) => [s.name, s.value]));
        expect(st.get('system.cpu.committedInsts')).toBe(82);
        expect(st.get('system.cpu.commit.serializing')).toBeGreaterThanOrEqual(1);
      }
    }
    expect(seen).toEqual(refRun.stops.map((s) => [s.call.name, s.instructions]));
    expect(stream.outcome).toEqual({ kind: 'exited', status: 0 });
    committed += o3.run().insts;
    expect(o3.done).toBe(true);
    expect(committed).toBe(ref.cpu.instructions);
  });

  it('a limited run() may stop before the op; the next one drains to it', () => {
    const { cpu, tracing } = machine(O3_SNIPPET, { tracing: true });
    const stream = new FunctionalStream(cpu, tracing!);
    const o3 = buildO3(o3Config({}), stream);
    const seen: [string, number][] = [];
    let committed = 0;
    for (let guard = 0; guard < 10_000 && !(stream.outcome && o3.done); guard++) {
      const r = o3.run(7);
      expect(r.insts).toBeLessThanOrEqual(7);
      committed += r.insts;
      if (o3.drainedAtPause) seen.push([stream.takeM5op()!.name, committed]);
    }
    expect(seen).toEqual([['work_begin', 3], ['reset_stats', 156], ['dump_stats', 238]]);
    expect(committed).toBe(239);
  });
});

// ---------------------------------------------------------------------------------------------
// Real workloads: checksum with --m5=inst / --m5=addr (rt.h: roi_begin = work_begin, reset_stats;
// roi_end = dump_stats, work_end).

const ENV = { LANG: 'C' };

function options(cpu: 'atomic' | 'o3', args: string[]): RunOptions {
  return {
    cpu,
    program: workloadPath('checksum'),
    argv0: '/workloads/checksum',
    args,
    env: envList(ENV),
    capture: true,
    memSize: 256 << 20,
    cpuid: BASELINE_CPUID,
    hostFreqHz: 2e9,
    onWarning: (w) => {
      throw new Error(`unexpected warning: ${w}`);
    },
  };
}

async function run(cpu: 'atomic' | 'o3', args: string[]): Promise<AtomicRun | O3Run> {
  const opts = options(cpu, args);
  const prep = prepareRun(opts);
  return cpu === 'atomic' ? runAtomicProgram(prep, opts) : runO3Program(prep, opts);
}

const statOf = (list: Stat[], name: string): number => {
  const s = list.find((x) => x.name === name);
  if (!s || typeof s.value !== 'number') throw new Error(`no numeric stat ${name}`);
  return s.value;
};
const byName = (ev: M5Event[], name: string): number => ev.find((e) => e.name === name)!.instructions;
const ROI = ['work_begin', 'reset_stats', 'dump_stats', 'work_end'];

describe('workloads issue m5ops on the atomic and o3 CPUs (checksum --m5=inst / --m5=addr)', () => {
  const args = workload('checksum').testArgs;
  const native = runNative('checksum', args, ENV);

  it('atomic: same output, the ROI ops in order, stats reset and dumped exactly', async () => {
    const plain = await run('atomic', args);
    expect(plain.stdout.toString()).toBe(native.stdout.toString());
    expect(plain.m5events).toEqual([]);
    expect(plain.dumps).toEqual([]);
    const runs: Record<string, AtomicRun | O3Run> = {};
    for (const form of ['inst', 'addr'] as const) {
      const r = await run('atomic', [...args, `--m5=${form}`]);
      runs[form] = r;
      expect(r.stdout.toString()).toBe(plain.stdout.toString());
      expect(r.stderr.toString()).toBe(plain.stderr.toString());
      expect(r.end).toEqual(plain.end);
      expect(r.m5events.map((e) => e.name)).toEqual(ROI);
      expect(r.m5events.every((e) => e.form === form)).toBe(true);
      const ev = r.m5events.map((e) => e.instructions);
      for (let i = 1; i < ev.length; i++) expect(ev[i]!).toBeGreaterThan(ev[i - 1]!);
      // The dump counts from the instruction after reset_stats through dump_stats.
      expect(r.dumps).toHaveLength(1);
      const roi = byName(r.m5events, 'dump_stats') - byName(r.m5events, 'reset_stats');
      expect(statOf(r.dumps[0]!, 'system.cpu.committedInsts')).toBe(roi);
      expect(statOf(r.dumps[0]!, 'simInsts')).toBe(roi);
      // The final stats count from reset_stats too; the summary covers the whole run.
      expect(statOf(r.statList, 'simInsts')).toBe(r.stats.instructions - byName(r.m5events, 'reset_stats'));
      // Parsing the extra argument and the ROI markers add a few instructions to the unchanged program.
      expect(r.stats.instructions - plain.stats.instructions).toBeGreaterThan(0);
      expect(r.stats.instructions - plain.stats.instructions).toBeLessThan(300);
    }
    // The two forms differ only by their call sequences (a few instructions each).
    const ia = runs.inst!.m5events;
    const aa = runs.addr!.m5events;
    const roiI = byName(ia, 'dump_stats') - byName(ia, 'reset_stats');
    const roiA = byName(aa, 'dump_stats') - byName(aa, 'reset_stats');
    expect(Math.abs(roiA - roiI)).toBeLessThan(20);
    // Back-to-back ops (rt.c): one instruction apart in the instruction form, two (mov eax, load) in the address form.
    expect(byName(ia, 'reset_stats') - byName(ia, 'work_begin')).toBe(1);
    expect(byName(ia, 'work_end') - byName(ia, 'dump_stats')).toBe(1);
    expect(byName(aa, 'reset_stats') - byName(aa, 'work_begin')).toBe(2);
    expect(byName(aa, 'work_end') - byName(aa, 'dump_stats')).toBe(2);
    // From work_end to the exit both forms run the same code.
    expect(runs.addr!.stats.instructions - byName(aa, 'work_end')).toBe(runs.inst!.stats.instructions - byName(ia, 'work_end'));
  });

  it.each(['inst', 'addr'] as const)(
    'o3 (--m5=%s): same output, the ops at the atomic counts, committed insts after reset_stats = the atomic ROI',
    async (form) => {
      const a = await run('atomic', [...args, `--m5=${form}`]);
      const o = await run('o3', [...args, `--m5=${form}`]);
      expect(o.stdout.toString()).toBe(native.stdout.toString());
      expect(o.end).toEqual(a.end);
      expect(o.m5events).toEqual(a.m5events);
      expect(o.stats.instructions).toBe(a.stats.instructions);
      expect(o.dumps).toHaveLength(1);
      const roi = byName(a.m5events, 'dump_stats') - byName(a.m5events, 'reset_stats');
      expect(statOf(o.dumps[0]!, 'system.cpu.committedInsts')).toBe(roi);
      expect(statOf(o.dumps[0]!, 'simInsts')).toBe(roi);
      expect(statOf(o.dumps[0]!, 'system.cpu.numCycles')).toBeGreaterThan(0);
      expect(statOf(o.statList, 'system.cpu.committedInsts')).toBe(a.stats.instructions - byName(a.m5events, 'reset_stats'));
    },
    120_000,
  );
});
