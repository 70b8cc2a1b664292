/**
 * In-process KVM machines for the micro-benchmarks: the same steps the KVM worker's boot()
 * performs before loading a program (src/kvm/worker.ts), over fresh mmap'd guest memory.
 */
import koffi from 'koffi';
import { AddressSpace } from '../../src/guest/addressSpace.js';
import { PROT_EXEC, PROT_READ, PROT_WRITE } from '../../src/guest/pageTables.js';
import { allocatePhysicalMemory, DEFAULT_MEM_SIZE, releasePhysicalMemory, type PhysicalMemory } from '../../src/guest/physmem.js';
import { describeExit } from '../../src/kvm/exits.js';
import { KVM_SYNC_X86_SREGS } from '../../src/kvm/ioctls.js';
import { KvmVM } from '../../src/kvm/kvmVm.js';
import { installSeKernel } from '../../src/kvm/seKernel.js';
import { libc, MAP_ANONYMOUS, MAP_FAILED, MAP_PRIVATE, PROT_READ as HOST_PROT_READ, PROT_WRITE as HOST_PROT_WRITE } from '../../src/native/libc.js';
import { SE_SYSCALL_DOORBELL_PHYS } from '../../src/guest/layout.js';

export interface Machine {
  phys: PhysicalMemory;
  vm: KvmVM;
  aspace: AddressSpace;
  close(): void;
}

/** Fresh guest memory (default size, sparse), VM + vCPU, SE kernel, long mode at CPL3. */
export function createMachine(): Machine {
  const phys = allocatePhysicalMemory(DEFAULT_MEM_SIZE, 'mmap');
  let vm: KvmVM | undefined;
  try {
    vm = new KvmVM(phys);
    const aspace = new AddressSpace(phys);
    installSeKernel(aspace, phys);
    vm.setupLongMode(aspace);
    const v = vm;
    return {
      phys,
      vm: v,
      aspace,
      close: () => {
        v.close();
        releasePhysicalMemory(phys);
      },
    };
  } catch (e) {
    vm?.close();
    releasePhysicalMemory(phys);
    throw e;
  }
}

/**
 * A guest function that reads the TSC: `lfence; rdtsc; syscall` on a user page, run at CPL3 the
 * way cpuidProbe.ts runs `cpuid` (the syscall reaches the SE stub's doorbell: an MMIO exit).
 */
export function guestTscReader(m: Machine): { read: () => bigint; dispose: () => void } {
  const page = m.aspace.mapAnywhere(4096, PROT_READ | PROT_EXEC, 'mmap', '[bench-rdtsc]');
  m.aspace.writeUnchecked(page, Uint8Array.from([0x0f, 0xae, 0xe8, 0x0f, 0x31, 0x0f, 0x05]));
  const v = m.vm.vcpu;
  const read = (): bigint => {
    v.setSyncReg('rip', BigInt(page));
    v.setSyncReg('rflags', 0x202n);
    m.vm.restoreUserSegments();
    v.markDirty(KVM_SYNC_X86_SREGS);
    const exit = v.run();
    if (exit.reason !== 'mmio' || exit.physAddr !== BigInt(SE_SYSCALL_DOORBELL_PHYS)) {
      throw new Error(`guest rdtsc probe: unexpected exit ${describeExit(exit)}`);
    }
    return ((v.syncReg('rdx') & 0xffffffffn) << 32n) | (v.syncReg('rax') & 0xffffffffn);
  };
  return { read, dispose: () => m.aspace.unmap(page, 4096) };
}

/** `lfence; rdtsc; shl rdx, 32; or rax, rdx; ret` in an executable host page, called through koffi. */
export function hostTscReader(): { read: () => bigint; dispose: () => void } {
  const c = libc();
  const PROT_EXEC_HOST = 4;
  const addr = c.mmap(0n, 4096, HOST_PROT_READ | HOST_PROT_WRITE | PROT_EXEC_HOST, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0n);
  if (addr === MAP_FAILED || addr === 0n) throw new Error('mmap of an executable page for the host rdtsc stub failed');
  new Uint8Array(c.view(addr, 4096)).set([0x0f, 0xae, 0xe8, 0x0f, 0x31, 0x48, 0xc1, 0xe2, 0x20, 0x48, 0x09, 0xd0, 0xc3]);
  const proto = koffi.proto('uint64_t bench_rdtsc(void)');
  return {
    read: () => BigInt(koffi.call(addr, proto) as number | bigint),
    dispose: () => void c.munmap(addr, 4096),
  };
}

function sleepMs(msec: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, msec);
}

/** TSC ticks per second of `read`, against CLOCK_MONOTONIC over `intervalMs`; median of `reps`. */
export function calibrateTsc(read: () => bigint, intervalMs = 150, reps = 3): number[] {
  read();
  const out: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    const r0 = read();
    sleepMs(intervalMs);
    const r1 = read();
    const t1 = process.hrtime.bigint();
    out.push(Number(r1 - r0) / (Number(t1 - t0) / 1e9));
  }
  return out;
}

export interface FirstTouch {
  pages: number;
  /** µs per 4 KiB page, first store to each page of a fresh guest mapping (inside KVM_RUN). */
  guestFirstUs: number[];
  /** µs per page, second pass over the same pages. */
  guestAgainUs: number[];
  /** µs per page, pass after a memory-slot reload (what switchsim does after munmap/mprotect). */
  guestAfterReloadUs: number[];
  /** µs for the memory-slot reload itself (two KVM_SET_USER_MEMORY_REGION). */
  reloadUs: number[];
  /** µs per page, first store from this (native) process to a fresh private anonymous mmap. */
  nativeFirstUs: number[];
  /** µs per page, second pass natively. */
  nativeAgainUs: number[];
}

/**
 * First-touch cost of memory: a guest loop stores one byte per page of a fresh mapping
 * (`mov byte [rdi], 1; add rdi, 4096; dec rsi; jnz; syscall`), timed around KVM_RUN; natively
 * the same stores from JS into a fresh private anonymous mmap (what a native program's mmap or
 * brk gets). Each repetition uses fresh memory.
 */
export function measureFirstTouch(pages = 4096, reps = 3): FirstTouch {
  const out: FirstTouch = {
    pages,
    guestFirstUs: [],
    guestAgainUs: [],
    guestAfterReloadUs: [],
    reloadUs: [],
    nativeFirstUs: [],
    nativeAgainUs: [],
  };
  const m = createMachine();
  try {
    const code = m.aspace.mapAnywhere(4096, PROT_READ | PROT_EXEC, 'mmap', '[bench-touch]');
    m.aspace.writeUnchecked(
      code,
      Uint8Array.from([0xc6, 0x07, 0x01, 0x48, 0x81, 0xc7, 0x00, 0x10, 0x00, 0x00, 0x48, 0xff, 0xce, 0x75, 0xf1, 0x0f, 0x05]),
    );
    const v = m.vm.vcpu;
    const pass = (data: number): number => {
      v.setSyncReg('rdi', BigInt(data));
      v.setSyncReg('rsi', BigInt(pages));
      v.setSyncReg('rip', BigInt(code));
      v.setSyncReg('rflags', 0x202n);
      m.vm.restoreUserSegments();
      v.markDirty(KVM_SYNC_X86_SREGS);
      const t0 = process.hrtime.bigint();
      const exit = v.run();
      const t1 = process.hrtime.bigint();
      if (exit.reason !== 'mmio' || exit.physAddr !== BigInt(SE_SYSCALL_DOORBELL_PHYS)) {
        throw new Error(`guest page-touch probe: unexpected exit ${describeExit(exit)}`);
      }
      return Number(t1 - t0) / 1e3 / pages;
    };
    for (let r = 0; r < reps; r++) {
      const data = m.aspace.mapAnywhere(pages * 4096, PROT_READ | PROT_WRITE, 'mmap', '[bench-touch-data]');
      out.guestFirstUs.push(pass(data));
      out.guestAgainUs.push(pass(data));
      const t0 = process.hrtime.bigint();
      m.vm.reloadMemorySlot();
      out.reloadUs.push(Number(process.hrtime.bigint() - t0) / 1e3);
      out.guestAfterReloadUs.push(pass(data));
    }
  } finally {
    m.close();
  }
  const c = libc();
  for (let r = 0; r < reps; r++) {
    const len = pages * 4096;
    const addr = c.mmap(0n, len, HOST_PROT_READ | HOST_PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0n);
    if (addr === MAP_FAILED || addr === 0n) throw new Error('mmap for the native page-touch probe failed');
    try {
      const b = new Uint8Array(c.view(addr, len));
      for (const into of [out.nativeFirstUs, out.nativeAgainUs]) {
        const t0 = process.hrtime.bigint();
        for (let i = 0; i < pages; i++) b[i * 4096] = 1;
        into.push(Number(process.hrtime.bigint() - t0) / 1e3 / pages);
      }
    } finally {
      c.munmap(addr, len);
    }
  }
  return out;
}
