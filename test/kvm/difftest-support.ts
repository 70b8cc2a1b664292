/** Helpers for the differential-testing tests: hand-assembled code and tiny static ELFs. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Encoder, type Instruction } from 'iced-x86';

/** Encodes instructions back to back from `ip` (and frees them). */
export function assemble(ip: number, list: Instruction[]): Uint8Array {
  const enc = new Encoder(64);
  const out: number[] = [];
  let at = BigInt(ip);
  for (const ins of list) {
    const n = enc.encode(ins, at);
    at += BigInt(n);
    out.push(...enc.takeBuffer());
    ins.free();
  }
  enc.free();
  return Uint8Array.from(out);
}

export const TINY_CODE = 0x400000;
export const TINY_DATA = 0x401000;

/**
 * Writes a static ELF: `code` at TINY_CODE (R-X, entry), `data` at TINY_DATA (RW-, 4 KiB at
 * least). Returns its path (in a fresh temp directory).
 */
export function tinyElf(code: Uint8Array, data: Uint8Array = new Uint8Array(16)): string {
  const codeOff = 0x1000;
  const dataOff = 0x2000;
  const file = new Uint8Array(dataOff + data.length);
  const v = new DataView(file.buffer);
  file.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]);
  v.setUint16(16, 2, true); // ET_EXEC
  v.setUint16(18, 62, true); // x86-64
  v.setUint32(20, 1, true);
  v.setBigUint64(24, BigInt(TINY_CODE), true);
  v.setBigUint64(32, 64n, true); // phoff
  v.setUint16(52, 64, true);
  v.setUint16(54, 56, true);
  v.setUint16(56, 2, true);
  const ph = (i: number, flags: number, off: number, vaddr: number, filesz: number, memsz: number) => {
    const o = 64 + i * 56;
    v.setUint32(o, 1, true); // PT_LOAD
    v.setUint32(o + 4, flags, true);
    v.setBigUint64(o + 8, BigInt(off), true);
    v.setBigUint64(o + 16, BigInt(vaddr), true);
    v.setBigUint64(o + 24, BigInt(vaddr), true);
    v.setBigUint64(o + 32, BigInt(filesz), true);
    v.setBigUint64(o + 40, BigInt(memsz), true);
    v.setBigUint64(o + 48, 0x1000n, true);
  };
  ph(0, 5, codeOff, TINY_CODE, code.length, code.length);
  ph(1, 6, dataOff, TINY_DATA, data.length, Math.max(data.length, 0x1000));
  file.set(code, codeOff);
  file.set(data, dataOff);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'switchsim-difftest-'));
  const p = path.join(dir, 'tiny');
  writeFileSync(p, file, { mode: 0o755 });
  return p;
}

import { GLIBC_BASELINE_TUNABLES } from '../../src/run.js';
import { WORKLOADS, workloadPath, type Workload } from '../support/workloads.js';
import { beforeAll, expect, it } from 'vitest';
import { loadAtomicCpu, type AtomicFactory } from '../../src/difftest/atomic.js';
import { lockstepInstructions } from '../../src/difftest/lockstep.js';
import { describeKvm } from './support.js';

export interface LockstepWorkload {
  workload: Workload;
  argv: string[];
  envp: string[];
  /** Why lockstep at syscalls cannot apply (the per-instruction lockstep still does). */
  noSyscallLockstep?: string;
}

/** Every bundled workload with its test arguments, as the lockstep tests run them. */
export function lockstepWorkloads(): LockstepWorkload[] {
  return WORKLOADS.map((w) => ({
    workload: w,
    argv: [w.name, ...w.testArgs],
    envp: w.kind === 'glibc' ? ['LANG=C', `GLIBC_TUNABLES=${GLIBC_BASELINE_TUNABLES}`] : ['LANG=C'],
    ...(w.name === 'spin' ? { noSyscallLockstep: 'never makes a syscall (an endless loop, killed by the time limit)' } : {}),
    ...(w.name === 'syscall_latency' ? { noSyscallLockstep: 'prints rdtsc differences: not a function of the program state' } : {}),
  }));
}

/** ≥ 100,000 in the suite (issue 3); SWITCHSIM_LOCKSTEP_INSTRUCTIONS overrides it for quick local runs. */
const LOCKSTEP_INSTRUCTIONS = Number(process.env.SWITCHSIM_LOCKSTEP_INSTRUCTIONS ?? 100_000);
/** ~70–90 µs per instruction on KVM alone, more when the other test files share the cores. */
const LOCKSTEP_TIMEOUT_MS = 240_000;

/**
 * Per-instruction lockstep of every `parts`-th workload starting at `part` (1-based): the suite
 * splits the workloads over files so they run in parallel. Registers after every instruction,
 * the memory each instruction wrote, and at the end all memory and the output must be equal.
 */
export function defineInstructionLockstep(part: number, parts: number): void {
  describeKvm(`difftest: lockstep per instruction, KVM against the atomic CPU (part ${part})`, () => {
    let atomic: AtomicFactory;
    beforeAll(async () => {
      const core = await loadAtomicCpu();
      if (!core.factory) throw new Error(`the atomic CPU is needed: ${core.reason}`);
      atomic = core.factory;
    });

    for (const w of lockstepWorkloads().filter((_, i) => i % parts === part - 1)) {
      it(`${w.workload.name} (${w.argv.slice(1).join(' ') || '-'}): equal after each of the first ${LOCKSTEP_INSTRUCTIONS} instructions`, () => {
        const r = lockstepInstructions({
          program: workloadPath(w.workload.name), argv: w.argv, envp: w.envp, atomic, maxInstructions: LOCKSTEP_INSTRUCTIONS,
        });
        expect(r.mismatch?.report).toBeUndefined();
        if (r.end === 'limit') expect(r.instructions).toBe(LOCKSTEP_INSTRUCTIONS);
        else expect(['exited', 'faulted']).toContain(r.end);
      }, LOCKSTEP_TIMEOUT_MS);
    }
  });
}
