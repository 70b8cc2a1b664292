/** Shared helpers for the guest-layer unit tests (no KVM). */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AddressSpace } from '../../src/guest/addressSpace.js';
import { allocatePhysicalMemory, type PhysicalMemory } from '../../src/guest/physmem.js';
import { type GuestIO, Process, type ProcessOptions } from '../../src/guest/process.js';
import type { SyscallThread } from '../../src/guest/syscalls.js';
import { syscallNumber } from '../../src/guest/syscalls/names.js';
import type { ThreadContext } from '../../src/guest/threadContext.js';

export const MiB = 1024 * 1024;

export function newPhys(size = 32 * MiB): PhysicalMemory {
  return allocatePhysicalMemory(size, 'shared');
}

/** An independent 4-level walk of the in-memory page tables (what KVM's MMU does). */
export interface WalkResult {
  phys: number;
  user: boolean;
  write: boolean;
  exec: boolean;
  accessed: boolean;
  dirty: boolean;
}

export function walk(phys: PhysicalMemory, cr3: number, linear: bigint): WalkResult | null {
  let table = cr3;
  let user = true;
  let write = true;
  let nx = false;
  let leaf = 0n;
  for (const shift of [39n, 30n, 21n, 12n]) {
    const idx = Number((linear >> shift) & 511n);
    const e = phys.view.getBigUint64(table + idx * 8, true);
    if (!(e & 1n)) return null;
    if (e & 0x80n && shift !== 12n) throw new Error('unexpected large page');
    user &&= (e & 4n) !== 0n;
    write &&= (e & 2n) !== 0n;
    nx ||= e >> 63n !== 0n;
    table = Number(e & 0x000ffffffffff000n);
    leaf = e;
  }
  return {
    phys: table + Number(linear & 0xfffn),
    user,
    write,
    exec: !nx,
    accessed: (leaf & 0x20n) !== 0n,
    dirty: (leaf & 0x40n) !== 0n,
  };
}

/** What the JS page map says for a user access: physical address or null. */
function jsTranslate(as: AddressSpace, vaddr: number, access: 'read' | 'write' | 'exec'): number | null {
  try {
    return as.translate(vaddr, access);
  } catch {
    return null;
  }
}

/**
 * Checks that the in-memory tables (through both PML4s) and the JS page map agree for every
 * page of every VMA plus one page on either side. Returns the number of pages checked.
 */
export function checkTablesAgree(as: AddressSpace): number {
  const pages = new Set<number>();
  for (const v of as.vmas) {
    for (let va = v.start; va < v.end; va += 4096) pages.add(va);
    if (v.start >= 4096) pages.add(v.start - 4096);
    pages.add(v.end);
  }
  for (const va of pages) {
    for (const cr3 of [as.cr3, as.cr3Alternate]) {
      const w = walk(as.phys, cr3, BigInt(va));
      const usable = w !== null && w.user;
      const r = jsTranslate(as, va, 'read');
      const wr = jsTranslate(as, va, 'write');
      const x = jsTranslate(as, va, 'exec');
      const expect = (cond: boolean, what: string) => {
        if (!cond) throw new Error(`tables disagree at 0x${va.toString(16)} (cr3 0x${cr3.toString(16)}): ${what}`);
      };
      expect((r !== null) === usable, `read: js ${r} walk ${JSON.stringify(w)}`);
      if (usable) {
        expect(r === w.phys, `phys js 0x${r?.toString(16)} walk 0x${w.phys.toString(16)}`);
        expect((wr !== null) === w.write, `write js ${wr !== null} walk ${w.write}`);
        expect((x !== null) === w.exec, `exec js ${x !== null} walk ${w.exec}`);
        expect(w.accessed && w.dirty, 'A and D preset');
      } else {
        expect(wr === null && x === null, 'write/exec allowed on a page the walk denies');
      }
    }
  }
  return pages.size;
}

/** A minimal valid static ELF: R-X text (with the headers) at 0x400000, RW data + bss at 0x401000. */
export function makeElf(opts: { bssSize?: number; type?: 'exec' | 'dyn' } = {}): Uint8Array {
  const base = opts.type === 'dyn' ? 0 : 0x400000;
  const bss = opts.bssSize ?? 0x2ff0;
  const file = new Uint8Array(0x1010);
  const v = new DataView(file.buffer);
  file.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]);
  v.setUint16(16, opts.type === 'dyn' ? 3 : 2, true);
  v.setUint16(18, 62, true);
  v.setUint32(20, 1, true);
  v.setBigUint64(24, BigInt(base + 0xb0), true); // entry: right after the headers
  v.setBigUint64(32, 64n, true);
  v.setUint16(52, 64, true);
  v.setUint16(54, 56, true);
  v.setUint16(56, 2, true);
  const ph = (i: number, flags: number, off: number, vaddr: number, filesz: number, memsz: number) => {
    const o = 64 + i * 56;
    v.setUint32(o, 1, true);
    v.setUint32(o + 4, flags, true);
    v.setBigUint64(o + 8, BigInt(off), true);
    v.setBigUint64(o + 16, BigInt(vaddr), true);
    v.setBigUint64(o + 24, BigInt(vaddr), true);
    v.setBigUint64(o + 32, BigInt(filesz), true);
    v.setBigUint64(o + 40, BigInt(memsz), true);
    v.setBigUint64(o + 48, 0x1000n, true);
  };
  ph(0, 5, 0, base, 0xc0, 0xc0); // R-X
  ph(1, 6, 0x1000, base + 0x1000, 0x10, 0x10 + bss); // RW-
  file.set([0x90, 0x90, 0x0f, 0x05, 0xeb, 0xfe], 0xb0); // nop; nop; syscall; jmp .
  file.set([0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], 0x1000);
  return file;
}

export class FakeThread implements SyscallThread {
  fsBase = 0n;
  gsBase = 0n;
  timeNs = 1_500_000_123n;
  cpuNs = 1_250_000_000n;
  getFsBase(): bigint {
    return this.fsBase;
  }
  setFsBase(v: bigint): void {
    this.fsBase = v;
  }
  getGsBase(): bigint {
    return this.gsBase;
  }
  setGsBase(v: bigint): void {
    this.gsBase = v;
  }
  guestTimeNs(): bigint {
    return this.timeNs;
  }
  cpuTimeNs(): bigint {
    return this.cpuNs;
  }
}

export interface TestGuest {
  phys: PhysicalMemory;
  process: Process;
  context: ThreadContext;
  thread: FakeThread;
  stdout: number[];
  stderr: number[];
  stdin: number[];
  warnings: string[];
  dir: string;
  /** Runs a syscall by name; returns the signed result (negative errno) as a number, or 'exit'. */
  sys(name: string | number, ...args: (bigint | number)[]): number;
  /** A scratch RW buffer in the guest (mmap'd once). */
  buf: number;
  text(fd: 1 | 2): string;
  writeString(vaddr: number, s: string): void;
  readString(vaddr: number, len: number): string;
}

/** A temp directory with a few files, removed by the caller with fs.rmSync. */
export function makeTempTree(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchsim-guest-'));
  fs.writeFileSync(path.join(dir, 'hello.txt'), 'hello, guest\nsecond line\n');
  fs.mkdirSync(path.join(dir, 'sub'));
  fs.writeFileSync(path.join(dir, 'sub', 'inner.bin'), Uint8Array.from({ length: 10000 }, (_, i) => i & 0xff));
  fs.symlinkSync('/etc/hostname', path.join(dir, 'escape'));
  fs.symlinkSync('hello.txt', path.join(dir, 'link'));
  return dir;
}

export function makeGuest(overrides: Partial<ProcessOptions> = {}, memSize = 32 * MiB): TestGuest {
  const phys = newPhys(memSize);
  const dir = overrides.allowRead?.[0] ?? makeTempTree();
  const stdout: number[] = [];
  const stderr: number[] = [];
  const stdin: number[] = [];
  const warnings: string[] = [];
  const io: GuestIO = {
    write: (fd, bytes) => (fd === 1 ? stdout : stderr).push(...bytes),
    read: (_fd, max) => Uint8Array.from(stdin.splice(0, max)),
  };
  const { process, context } = Process.load(phys, makeElf(), {
    exePath: path.join(dir, 'prog'),
    argv: ['prog', 'arg1'],
    envp: ['HOME=/root', 'LANG=C'],
    allowRead: [dir],
    cwd: dir,
    seed: 42n,
    uid: 1234,
    gid: 5678,
    hwcap: 0x178bfbff,
    hwcap2: 2,
    io,
    warn: (m) => warnings.push(m),
    ...overrides,
  });
  const thread = new FakeThread();
  const sys = (name: string | number, ...args: (bigint | number)[]): number => {
    const nr = typeof name === 'number' ? name : syscallNumber(name);
    const a = [0, 1, 2, 3, 4, 5].map((i) => BigInt.asUintN(64, BigInt(args[i] ?? 0)));
    const r = process.syscall(thread, nr, a);
    if (r.kind === 'exit') return -0x10000 - r.status;
    return Number(BigInt.asIntN(64, r.value));
  };
  const buf = sys('mmap', 0, 0x10000, 3, 0x22, -1, 0);
  const writeString = (vaddr: number, s: string) => process.aspace.write(vaddr, Buffer.from(`${s}\0`, 'utf8'));
  const readString = (vaddr: number, len: number) => Buffer.from(process.aspace.read(vaddr, len)).toString('utf8');
  const text = (fd: 1 | 2) => Buffer.from(fd === 1 ? stdout : stderr).toString('utf8');
  return { phys, process, context, thread, stdout, stderr, stdin, warnings, dir, sys, buf, text, writeString, readString };
}

/** Finds a prebuilt workload binary, or explains why there is none. */
export function findWorkload(name: string): { path: string } | { skip: string } {
  const p = path.resolve('workloads/build', name);
  if (!fs.existsSync(p)) return { skip: `workloads/build/${name} does not exist (run npm run build:workloads)` };
  return { path: p };
}
