/**
 * The few libc entry points switchsim calls through koffi. Loaded lazily so that code paths
 * that never touch the host (unit tests, the JS CPUs on SharedArrayBuffer memory) never load
 * the native library. koffi 3 represents pointers as bigints, so native addresses travel
 * between threads unchanged.
 */
import koffi from 'koffi';
import os from 'node:os';

export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_ANONYMOUS = 0x20;
export const MAP_NORESERVE = 0x4000;
export const MAP_FAILED = 0xffffffffffffffffn;
export const O_RDWR = 2;
export const O_CLOEXEC = 0o2000000;
export const SYS_gettid = 186;
export const SYS_tgkill = 234;
export const SIGUSR2 = 12;
export const SYS_timer_create = 222;
export const SYS_timer_settime = 223;
export const SYS_timer_delete = 226;
export const CLOCK_MONOTONIC = 1;
/** sigev_notify: deliver the signal to the thread in sigev_notify_thread_id (Linux). */
export const SIGEV_THREAD_ID = 4;
/** struct sigevent (x86-64, 64 bytes): the fields a thread-directed timer needs. */
export const SIGEVENT_LAYOUT = { size: 64, signo: 8, notify: 12, threadId: 16 } as const;
/** struct itimerspec (x86-64): it_interval, then it_value, each { tv_sec, tv_nsec } of 8 bytes. */
export const ITIMERSPEC_LAYOUT = { size: 32, intervalSec: 0, intervalNsec: 8, valueSec: 16, valueNsec: 24 } as const;

export interface Libc {
  open(path: string, flags: number): number;
  close(fd: number): number;
  /** ioctl with an integer argument. */
  ioctlInt(fd: number, request: number, arg: bigint): number;
  /** ioctl with a pointer argument (a Buffer, or a native address as bigint). */
  ioctlPtr(fd: number, request: number, arg: Buffer | Uint8Array | bigint | null): number;
  mmap(addr: bigint, length: number, prot: number, flags: number, fd: number, offset: bigint): bigint;
  munmap(addr: bigint, length: number): number;
  madvise(addr: bigint, length: number, advice: number): number;
  gettid(): number;
  getpid(): number;
  tgkill(pid: number, tid: number, sig: number): number;
  /**
   * A CLOCK_MONOTONIC POSIX timer that sends `signal` to thread `tid` (SIGEV_THREAD_ID); returns
   * its id, or -1 (see errno).
   */
  threadTimerCreate(tid: number, signal: number): number;
  /** Arms the timer to fire after `ns` nanoseconds, then every `everyNs` (0: once; ns 0 disarms it); 0 or -1. */
  timerArm(id: number, ns: number, everyNs?: number): number;
  timerDelete(id: number): number;
  /** errno of the last failed call; read it before anything else runs. */
  errno(): number;
  /** An ArrayBuffer over native memory (no copy). */
  view(address: bigint, length: number): ArrayBuffer;
}

let cached: Libc | undefined;

export function libc(): Libc {
  if (cached) return cached;
  const lib = koffi.load('libc.so.6');
  const open = lib.func('int open(const char *path, int flags)');
  const close = lib.func('int close(int fd)');
  const ioctlInt = lib.func('int ioctl(int fd, unsigned long req, uint64_t arg)');
  const ioctlPtr = lib.func('ioctl', 'int', ['int', 'unsigned long', 'void *']);
  const mmap = lib.func('void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)');
  const munmap = lib.func('int munmap(void *addr, size_t length)');
  const madvise = lib.func('int madvise(void *addr, size_t length, int advice)');
  const syscall3 = lib.func('long syscall(long nr, long a, long b, long c)');
  const syscall0 = lib.func('long syscall(long nr)');
  const getpid = lib.func('int getpid(void)');
  const syscallPP = lib.func('syscall', 'long', ['long', 'long', 'void *', 'void *']);
  const syscallLLPP = lib.func('syscall', 'long', ['long', 'long', 'long', 'void *', 'void *']);
  cached = {
    open: (p, f) => open(p, f) as number,
    close: (fd) => close(fd) as number,
    ioctlInt: (fd, r, a) => ioctlInt(fd, r, a) as number,
    ioctlPtr: (fd, r, a) => ioctlPtr(fd, r, a) as number,
    mmap: (addr, len, prot, flags, fd, off) => BigInt((mmap(addr === 0n ? null : addr, len, prot, flags, fd, off) as bigint | null) ?? 0n),
    munmap: (addr, len) => munmap(addr, len) as number,
    madvise: (addr, len, adv) => madvise(addr, len, adv) as number,
    gettid: () => Number(syscall0(SYS_gettid)),
    getpid: () => getpid() as number,
    tgkill: (pid, tid, sig) => Number(syscall3(SYS_tgkill, pid, tid, sig)),
    threadTimerCreate: (tid, signal) => {
      const ev = Buffer.alloc(SIGEVENT_LAYOUT.size);
      ev.writeInt32LE(signal, SIGEVENT_LAYOUT.signo);
      ev.writeInt32LE(SIGEV_THREAD_ID, SIGEVENT_LAYOUT.notify);
      ev.writeInt32LE(tid, SIGEVENT_LAYOUT.threadId);
      const id = Buffer.alloc(8);
      if (Number(syscallPP(SYS_timer_create, CLOCK_MONOTONIC, ev, id)) !== 0) return -1;
      return id.readInt32LE(0);
    },
    timerArm: (id, ns, everyNs = 0) => {
      const spec = Buffer.alloc(ITIMERSPEC_LAYOUT.size);
      const whole = Math.max(0, Math.round(ns));
      const every = Math.max(0, Math.round(everyNs));
      spec.writeBigInt64LE(BigInt(Math.floor(whole / 1e9)), ITIMERSPEC_LAYOUT.valueSec);
      spec.writeBigInt64LE(BigInt(whole % 1e9), ITIMERSPEC_LAYOUT.valueNsec);
      spec.writeBigInt64LE(BigInt(Math.floor(every / 1e9)), ITIMERSPEC_LAYOUT.intervalSec);
      spec.writeBigInt64LE(BigInt(every % 1e9), ITIMERSPEC_LAYOUT.intervalNsec);
      return Number(syscallLLPP(SYS_timer_settime, id, 0, spec, null));
    },
    timerDelete: (id) => Number(syscall3(SYS_timer_delete, id, 0, 0)),
    errno: () => koffi.errno(),
    view: (address, length) => koffi.view(address, length),
  };
  return cached;
}

export function strerror(errno: number): string {
  const names = os.constants.errno as Record<string, number>;
  for (const [name, value] of Object.entries(names)) if (value === errno) return name;
  return `errno ${errno}`;
}
