/**
 * Guest physical memory: one buffer shared by every CPU model and every thread.
 * With KVM it is an anonymous MAP_NORESERVE mmap (sparse: untouched pages cost nothing) that
 * KVM maps as a memory slot; without KVM it is a SharedArrayBuffer. Either way each thread
 * attaches its own views; only the handle travels between threads.
 */
import { ConfigError } from '../errors.js';
import { GuestInternalError } from './errors.js';
import { libc, MAP_ANONYMOUS, MAP_FAILED, MAP_NORESERVE, MAP_SHARED, PROT_READ, PROT_WRITE, strerror } from '../native/libc.js';

export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12;
/** One view per buffer: koffi views and typed arrays stop just below 4 GiB. */
export const MAX_MEM_SIZE = 4 * 1024 ** 3 - 64 * 1024;
export const MIN_MEM_SIZE = 16 * 1024 ** 2;
export const DEFAULT_MEM_SIZE = 2 * 1024 ** 3;

export type PhysicalMemoryHandle =
  | { kind: 'mmap'; address: bigint; size: number }
  | { kind: 'shared'; buffer: SharedArrayBuffer; size: number };

export interface PhysicalMemory {
  readonly handle: PhysicalMemoryHandle;
  readonly size: number;
  readonly bytes: Uint8Array;
  readonly view: DataView;
}

export function checkMemSize(size: number): number {
  if (!Number.isSafeInteger(size) || size < MIN_MEM_SIZE || size > MAX_MEM_SIZE) {
    throw new ConfigError('--mem-size', `must be between ${MIN_MEM_SIZE} and ${MAX_MEM_SIZE} bytes, got ${size}`);
  }
  return Math.floor(size / PAGE_SIZE) * PAGE_SIZE;
}

/** Parses "512M", "2G", "1048576" style sizes. */
export function parseSize(text: string, option = '--mem-size'): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(text.trim());
  if (!m) throw new ConfigError(option, `not a size: '${text}' (examples: 512M, 2G)`);
  const scale = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase()] ?? 1;
  return Math.round(Number(m[1]) * scale);
}

/** Allocates guest physical memory: native (for KVM) or a SharedArrayBuffer. */
export function allocatePhysicalMemory(size: number, kind: 'mmap' | 'shared'): PhysicalMemory {
  size = checkMemSize(size);
  if (kind === 'shared') return attachPhysicalMemory({ kind, buffer: new SharedArrayBuffer(size), size });
  const c = libc();
  const address = c.mmap(0n, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0n);
  if (address === MAP_FAILED || address === 0n) {
    throw new GuestInternalError(`mmap of ${size} bytes of guest memory failed: ${strerror(c.errno())}`);
  }
  return attachPhysicalMemory({ kind, address, size });
}

/** Views an existing buffer from this thread. */
export function attachPhysicalMemory(handle: PhysicalMemoryHandle): PhysicalMemory {
  const buffer = handle.kind === 'shared' ? handle.buffer : libc().view(handle.address, handle.size);
  return {
    handle,
    size: handle.size,
    bytes: new Uint8Array(buffer, 0, handle.size),
    view: new DataView(buffer, 0, handle.size),
  };
}

/** Returns native memory to the host (the SharedArrayBuffer case is left to the GC). */
export function releasePhysicalMemory(mem: PhysicalMemory): void {
  if (mem.handle.kind === 'mmap') libc().munmap(mem.handle.address, mem.handle.size);
}
