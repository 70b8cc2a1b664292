/**
 * Process, identity, time, signal, limit and futex syscalls. Guest time comes from the CPU
 * model (thread.guestTimeNs / cpuTimeNs), never from the host clock, so runs are reproducible.
 */
import { GuestDeadlockError } from '../errors.js';
import { USER_TOP } from '../layout.js';
import { PAGE_SIZE } from '../physmem.js';
import {
  ARCH_GET_FS,
  ARCH_GET_GS,
  ARCH_SET_FS,
  ARCH_SET_GS,
  CLOCK_BOOTTIME,
  CLOCK_BOOTTIME_ALARM,
  CLOCK_MONOTONIC,
  CLOCK_MONOTONIC_COARSE,
  CLOCK_MONOTONIC_RAW,
  CLOCK_PROCESS_CPUTIME_ID,
  CLOCK_REALTIME,
  CLOCK_REALTIME_ALARM,
  CLOCK_REALTIME_COARSE,
  CLOCK_TAI,
  CLOCK_THREAD_CPUTIME_ID,
  CLOCKS_PER_SEC,
  FUTEX_CMD_MASK,
  FUTEX_CMP_REQUEUE,
  FUTEX_REQUEUE,
  FUTEX_WAIT,
  FUTEX_WAIT_BITSET,
  FUTEX_WAKE,
  FUTEX_WAKE_BITSET,
  FUTEX_WAKE_OP,
  GRND_INSECURE,
  GRND_NONBLOCK,
  GRND_RANDOM,
  KSIGACTION_SIZE,
  MAX_RW_COUNT,
  MINSIGSTKSZ,
  NSIG,
  RLIMIT_NOFILE,
  RLIM_INFINITY,
  RLIM_NLIMITS,
  RUSAGE,
  RUSAGE_CHILDREN,
  RUSAGE_SELF,
  RUSAGE_SIZE,
  RUSAGE_THREAD,
  SIGKILL,
  SIGSTOP,
  SIG_BLOCK,
  SIG_DFL,
  SIG_IGN,
  SIG_SETMASK,
  SIG_UNBLOCK,
  SS_AUTODISARM,
  SS_DISABLE,
  SS_ONSTACK,
  STACK_T_SIZE,
  SYSINFO,
  SYSINFO_SIZE,
  TIMER_ABSTIME,
  TMS_SIZE,
  UTSNAME_SIZE,
  UTS_FIELD,
} from './abi.js';
import { EAGAIN, EINVAL, ENODEV, ENOMEM, ENOSYS, EPERM, ESRCH, ETIMEDOUT } from './errno.js';
import { FD_LIMIT_MAX } from '../fdTable.js';
import {
  EXIT,
  NS_PER_SEC,
  type SyscallHandler,
  int,
  ptr,
  putCString,
  readPair,
  readTimespec,
  size,
  uint,
  writePair,
  writeTimespec,
} from './util.js';

export const UNAME_RELEASE = '6.1.0-switchsim';
export const UNAME_VERSION = '#1 SMP PREEMPT_DYNAMIC switchsim';

// ---- exit ----

const exit: SyscallHandler = (p, _t, a) => {
  p.exitStatus = int(a[0]) & 0xff;
  return EXIT;
};

// ---- identity ----

const getpid: SyscallHandler = (p) => p.pid;
const getppid: SyscallHandler = (p) => p.ppid;
const getuid: SyscallHandler = (p) => p.uid;
const getgid: SyscallHandler = (p) => p.gid;
const getpgid: SyscallHandler = (p, _t, a) => (int(a[0]) === 0 || int(a[0]) === p.pid ? p.pid : -ESRCH);

const getresuid: SyscallHandler = (p, _t, a) => {
  for (let i = 0; i < 3; i++) p.aspace.writeU32(ptr(a[i]), p.uid);
  return 0;
};
const getresgid: SyscallHandler = (p, _t, a) => {
  for (let i = 0; i < 3; i++) p.aspace.writeU32(ptr(a[i]), p.gid);
  return 0;
};
const getgroups: SyscallHandler = (_p, _t, a) => (int(a[0]) < 0 ? -EINVAL : 0);

const setTidAddress: SyscallHandler = (p, _t, a) => {
  p.tidAddress = a[0] ?? 0n;
  return p.tid;
};

const setRobustList: SyscallHandler = (p, _t, a) => {
  if ((a[1] ?? 0n) !== 24n) return -EINVAL;
  p.robustList = { head: a[0] ?? 0n, length: 24n };
  return 0;
};

const getRobustList: SyscallHandler = (p, _t, a) => {
  const pid = int(a[0]);
  if (pid !== 0 && pid !== p.pid) return -ESRCH;
  p.aspace.writeU64(ptr(a[1]), p.robustList.head);
  p.aspace.writeU64(ptr(a[2]), p.robustList.length);
  return 0;
};

const uname: SyscallHandler = (p, _t, a) => {
  const out = new Uint8Array(UTSNAME_SIZE);
  const fields = ['Linux', p.hostname, UNAME_RELEASE, UNAME_VERSION, 'x86_64', '(none)'];
  fields.forEach((s, i) => putCString(out, i * UTS_FIELD, UTS_FIELD, s));
  p.aspace.write(ptr(a[0]), out);
  return 0;
};

const umask: SyscallHandler = (p, _t, a) => {
  const old = p.umask;
  p.umask = int(a[0]) & 0o777;
  return old;
};

const archPrctl: SyscallHandler = (p, t, a) => {
  const code = int(a[0]);
  const addr = a[1] ?? 0n;
  switch (code) {
    case ARCH_SET_FS:
      if (addr >= BigInt(USER_TOP)) return -EPERM;
      t.setFsBase(addr);
      return 0;
    case ARCH_SET_GS:
      if (addr >= BigInt(USER_TOP)) return -EPERM;
      t.setGsBase(addr);
      return 0;
    case ARCH_GET_FS:
      p.aspace.writeU64(ptr(addr), t.getFsBase());
      return 0;
    case ARCH_GET_GS:
      p.aspace.writeU64(ptr(addr), t.getGsBase());
      return 0;
    case 0x1012: // ARCH_SET_CPUID: no CPUID faulting here
      return -ENODEV;
    default:
      return -EINVAL;
  }
};

const PR_SET_NAME = 15;
const PR_GET_NAME = 16;
const PR_GET_DUMPABLE = 3;
const PR_SET_DUMPABLE = 4;

const prctl: SyscallHandler = (p, _t, a) => {
  switch (int(a[0])) {
    case PR_SET_NAME: {
      const name = p.aspace.readCString(ptr(a[1]), 15) ?? '';
      p.comm = name;
      return 0;
    }
    case PR_GET_NAME: {
      const out = new Uint8Array(16);
      putCString(out, 0, 16, p.comm);
      p.aspace.write(ptr(a[1]), out);
      return 0;
    }
    case PR_GET_DUMPABLE:
      return 1;
    case PR_SET_DUMPABLE:
      return uint(a[1]) <= 1 ? 0 : -EINVAL;
    default:
      return -EINVAL;
  }
};

// ---- time ----

const COARSE_NS = 4_000_000n; // one jiffy at HZ=250

function clockNs(p: Parameters<SyscallHandler>[0], t: Parameters<SyscallHandler>[1], clock: number): bigint | null {
  switch (clock) {
    case CLOCK_REALTIME:
    case CLOCK_TAI:
    case CLOCK_REALTIME_ALARM:
      return p.epochNs + t.guestTimeNs();
    case CLOCK_REALTIME_COARSE: {
      const ns = p.epochNs + t.guestTimeNs();
      return ns - (ns % COARSE_NS);
    }
    case CLOCK_MONOTONIC:
    case CLOCK_MONOTONIC_RAW:
    case CLOCK_BOOTTIME:
    case CLOCK_BOOTTIME_ALARM:
      return t.guestTimeNs();
    case CLOCK_MONOTONIC_COARSE: {
      const ns = t.guestTimeNs();
      return ns - (ns % COARSE_NS);
    }
    case CLOCK_PROCESS_CPUTIME_ID:
    case CLOCK_THREAD_CPUTIME_ID:
      return t.cpuTimeNs();
    default:
      return null;
  }
}

const clockGettime: SyscallHandler = (p, t, a) => {
  const ns = clockNs(p, t, int(a[0]));
  if (ns === null) return -EINVAL;
  writeTimespec(p, ptr(a[1]), ns);
  return 0;
};

const clockGetres: SyscallHandler = (p, t, a) => {
  const clock = int(a[0]);
  if (clockNs(p, t, clock) === null) return -EINVAL;
  if ((a[1] ?? 0n) !== 0n) {
    const coarse = clock === CLOCK_REALTIME_COARSE || clock === CLOCK_MONOTONIC_COARSE;
    writeTimespec(p, ptr(a[1]), coarse ? COARSE_NS : 1n);
  }
  return 0;
};

const gettimeofday: SyscallHandler = (p, t, a) => {
  if ((a[0] ?? 0n) !== 0n) {
    const ns = p.epochNs + t.guestTimeNs();
    writePair(p, ptr(a[0]), ns / NS_PER_SEC, (ns % NS_PER_SEC) / 1000n);
  }
  if ((a[1] ?? 0n) !== 0n) p.aspace.write(ptr(a[1]), new Uint8Array(8)); // struct timezone: UTC
  return 0;
};

const time: SyscallHandler = (p, t, a) => {
  const sec = (p.epochNs + t.guestTimeNs()) / NS_PER_SEC;
  if ((a[0] ?? 0n) !== 0n) p.aspace.writeU64(ptr(a[0]), sec);
  return Number(sec);
};

const NS_PER_TICK = NS_PER_SEC / BigInt(CLOCKS_PER_SEC);

const times: SyscallHandler = (p, t, a) => {
  if ((a[0] ?? 0n) !== 0n) {
    const out = new Uint8Array(TMS_SIZE);
    new DataView(out.buffer).setBigInt64(0, t.cpuTimeNs() / NS_PER_TICK, true);
    p.aspace.write(ptr(a[0]), out);
  }
  return Number(t.guestTimeNs() / NS_PER_TICK);
};

const getrusage: SyscallHandler = (p, t, a) => {
  const who = int(a[0]);
  if (who !== RUSAGE_SELF && who !== RUSAGE_CHILDREN && who !== RUSAGE_THREAD) return -EINVAL;
  const out = new Uint8Array(RUSAGE_SIZE);
  if (who !== RUSAGE_CHILDREN) {
    const v = new DataView(out.buffer);
    const cpu = t.cpuTimeNs();
    v.setBigInt64(RUSAGE.utime, cpu / NS_PER_SEC, true);
    v.setBigInt64(RUSAGE.utime + 8, (cpu % NS_PER_SEC) / 1000n, true);
    v.setBigInt64(RUSAGE.maxrss, BigInt((p.aspace.mappedPages * PAGE_SIZE) / 1024), true);
  }
  p.aspace.write(ptr(a[1]), out);
  return 0;
};

function noteSleep(p: Parameters<SyscallHandler>[0]): void {
  p.warnOnce('sleep', 'the guest sleeps: sleeping returns at once and does not advance guest time');
}

const nanosleep: SyscallHandler = (p, _t, a) => {
  if (readTimespec(p, ptr(a[0])) === null) return -EINVAL;
  noteSleep(p);
  return 0;
};

const clockNanosleep: SyscallHandler = (p, t, a) => {
  const clock = int(a[0]);
  if (clock === CLOCK_THREAD_CPUTIME_ID || clockNs(p, t, clock) === null) return -EINVAL;
  if (int(a[1]) & ~TIMER_ABSTIME) return -EINVAL;
  if (readTimespec(p, ptr(a[2])) === null) return -EINVAL;
  noteSleep(p);
  return 0;
};

// ---- system information ----

const sysinfo: SyscallHandler = (p, t, a) => {
  const out = new Uint8Array(SYSINFO_SIZE);
  const v = new DataView(out.buffer);
  v.setBigInt64(SYSINFO.uptime, t.guestTimeNs() / NS_PER_SEC, true);
  v.setBigUint64(SYSINFO.totalram, BigInt(p.aspace.phys.size), true);
  v.setBigUint64(SYSINFO.freeram, BigInt(p.aspace.availablePages * PAGE_SIZE), true);
  v.setUint16(SYSINFO.procs, 1, true);
  v.setUint32(SYSINFO.memUnit, 1, true);
  p.aspace.write(ptr(a[0]), out);
  return 0;
};

const schedGetaffinity: SyscallHandler = (p, _t, a) => {
  const pid = int(a[0]);
  if (pid !== 0 && pid !== p.pid) return -ESRCH;
  const len = uint(a[1]);
  if (len < 8 || len % 8 !== 0) return -EINVAL;
  p.aspace.writeU64(ptr(a[2]), 1n); // one CPU
  return 8;
};

const schedSetaffinity: SyscallHandler = (p, _t, a) => {
  const pid = int(a[0]);
  if (pid !== 0 && pid !== p.pid) return -ESRCH;
  if (uint(a[1]) === 0) return -EINVAL;
  return (p.aspace.readU8(ptr(a[2])) & 1) !== 0 ? 0 : -EINVAL;
};

const getcpu: SyscallHandler = (p, _t, a) => {
  if ((a[0] ?? 0n) !== 0n) p.aspace.writeU32(ptr(a[0]), 0);
  if ((a[1] ?? 0n) !== 0n) p.aspace.writeU32(ptr(a[1]), 0);
  return 0;
};

const getrandom: SyscallHandler = (p, _t, a) => {
  const flags = uint(a[2]);
  if (flags & ~(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE)) return -EINVAL;
  if ((flags & (GRND_RANDOM | GRND_INSECURE)) === (GRND_RANDOM | GRND_INSECURE)) return -EINVAL;
  const len = Math.min(size(a[1]), MAX_RW_COUNT);
  if (len === 0) return 0;
  const buf = ptr(a[0]);
  p.aspace.checkAccess(buf, len, 'write');
  const CHUNK = 65536;
  for (let done = 0; done < len; done += CHUNK) p.aspace.write(buf + done, p.random.bytes(Math.min(CHUNK, len - done)));
  return len;
};

// ---- limits ----

function setLimit(p: Parameters<SyscallHandler>[0], resource: number, cur: bigint, max: bigint): number {
  const [, oldMax] = p.rlimits[resource]!;
  if (cur > max) return -EINVAL;
  if (max > oldMax && p.uid !== 0) return -EPERM;
  if (resource === RLIMIT_NOFILE && max > BigInt(FD_LIMIT_MAX)) return -EPERM; // Linux: above nr_open
  p.rlimits[resource] = [cur, max];
  return 0;
}

const prlimit64: SyscallHandler = (p, _t, a) => {
  const pid = int(a[0]);
  if (pid !== 0 && pid !== p.pid) return -ESRCH;
  const resource = uint(a[1]);
  if (resource >= RLIM_NLIMITS) return -EINVAL;
  const wanted = (a[2] ?? 0n) !== 0n ? readPair(p, ptr(a[2])).map((x) => BigInt.asUintN(64, x)) : null;
  const [oldCur, oldMax] = p.rlimits[resource]!;
  if (wanted) {
    const r = setLimit(p, resource, wanted[0]!, wanted[1]!);
    if (r < 0) return r;
  }
  if ((a[3] ?? 0n) !== 0n) writePair(p, ptr(a[3]), oldCur, oldMax);
  return 0;
};

const getrlimit: SyscallHandler = (p, _t, a) => {
  const resource = uint(a[0]);
  if (resource >= RLIM_NLIMITS) return -EINVAL;
  const [cur, max] = p.rlimits[resource]!;
  writePair(p, ptr(a[1]), cur, max);
  return 0;
};

const setrlimit: SyscallHandler = (p, _t, a) => {
  const resource = uint(a[0]);
  if (resource >= RLIM_NLIMITS) return -EINVAL;
  const [cur, max] = readPair(p, ptr(a[1])).map((x) => BigInt.asUintN(64, x));
  return setLimit(p, resource, cur!, max!);
};

// ---- signals (recorded, never delivered) ----

const SIG_STOP_KILL_MASK = (1n << BigInt(SIGKILL - 1)) | (1n << BigInt(SIGSTOP - 1));

const rtSigaction: SyscallHandler = (p, _t, a) => {
  const sig = int(a[0]);
  if ((a[3] ?? 0n) !== 8n) return -EINVAL;
  if (sig < 1 || sig > NSIG) return -EINVAL;
  const act = a[1] ?? 0n;
  if (act !== 0n && (sig === SIGKILL || sig === SIGSTOP)) return -EINVAL;
  const incoming = act !== 0n ? p.aspace.read(ptr(act), KSIGACTION_SIZE) : null;
  const old = p.signals.actions.get(sig) ?? new Uint8Array(KSIGACTION_SIZE);
  if (incoming) {
    if (incoming.every((b) => b === 0)) p.signals.actions.delete(sig);
    else p.signals.actions.set(sig, incoming);
  }
  if ((a[2] ?? 0n) !== 0n) p.aspace.write(ptr(a[2]), old);
  return 0;
};

const rtSigprocmask: SyscallHandler = (p, _t, a) => {
  if ((a[3] ?? 0n) !== 8n) return -EINVAL;
  const old = p.signals.mask;
  if ((a[1] ?? 0n) !== 0n) {
    const how = int(a[0]);
    const set = p.aspace.readU64(ptr(a[1])) & ~SIG_STOP_KILL_MASK;
    if (how === SIG_BLOCK) p.signals.mask = old | set;
    else if (how === SIG_UNBLOCK) p.signals.mask = old & ~set;
    else if (how === SIG_SETMASK) p.signals.mask = set;
    else return -EINVAL;
  }
  if ((a[2] ?? 0n) !== 0n) p.aspace.writeU64(ptr(a[2]), old);
  return 0;
};

const sigaltstack: SyscallHandler = (p, _t, a) => {
  const prev = p.signals.altStack;
  let next = prev;
  if ((a[0] ?? 0n) !== 0n) {
    const raw = p.aspace.read(ptr(a[0]), STACK_T_SIZE);
    const v = new DataView(raw.buffer);
    const sp = v.getBigUint64(0, true);
    const flags = v.getInt32(8, true);
    const sz = v.getBigUint64(16, true);
    const mode = flags & ~SS_AUTODISARM;
    if (mode !== 0 && mode !== SS_DISABLE && mode !== SS_ONSTACK) return -EINVAL;
    if (mode === SS_DISABLE) next = { sp: 0n, flags: SS_DISABLE, size: 0n };
    else if (sz < BigInt(MINSIGSTKSZ)) return -ENOMEM;
    else next = { sp, flags: flags & SS_AUTODISARM, size: sz };
  }
  if ((a[1] ?? 0n) !== 0n) {
    const out = new Uint8Array(STACK_T_SIZE);
    const v = new DataView(out.buffer);
    v.setBigUint64(0, prev.sp, true);
    v.setInt32(8, prev.size === 0n ? SS_DISABLE : prev.flags, true);
    v.setBigUint64(16, prev.size, true);
    p.aspace.write(ptr(a[1]), out);
  }
  p.signals.altStack = next;
  return 0;
};

/** Signals whose default action is to do nothing. */
const DEFAULT_IGNORED = new Set([17, 18, 23, 28]); // SIGCHLD, SIGCONT, SIGURG, SIGWINCH
const STOP_SIGNALS = new Set([19, 20, 21, 22]);

/** A signal the guest sends itself: default-fatal ones end the process, the rest are not delivered. */
function selfSignal(p: Parameters<SyscallHandler>[0], sig: number): number {
  if (sig === 0) return 0;
  if (sig < 0 || sig > NSIG) return -EINVAL;
  const bit = 1n << BigInt(sig - 1);
  const action = p.signals.actions.get(sig);
  const handler = action ? new DataView(action.buffer, action.byteOffset, 8).getBigUint64(0, true) : SIG_DFL;
  if (sig !== SIGKILL && sig !== SIGSTOP && p.signals.mask & bit) {
    p.warnOnce(`blocked-signal-${sig}`, `the guest raised blocked signal ${sig}: it stays pending forever (signals are not delivered)`);
    return 0;
  }
  if (sig !== SIGKILL && handler === SIG_IGN) return 0;
  if (sig !== SIGKILL && handler !== SIG_DFL) {
    p.warnOnce(`handled-signal-${sig}`, `the guest raised signal ${sig}, which has a handler: signal delivery is not emulated; ignored`);
    return 0;
  }
  if (DEFAULT_IGNORED.has(sig)) return 0;
  if (STOP_SIGNALS.has(sig)) {
    p.warnOnce(`stop-signal-${sig}`, `the guest raised stop signal ${sig}: ignored`);
    return 0;
  }
  p.exitSignal = sig;
  p.exitStatus = 128 + sig;
  return EXIT;
}

const kill: SyscallHandler = (p, _t, a) => {
  const pid = int(a[0]);
  if (pid !== p.pid && pid !== 0 && pid !== -1 && pid !== -p.pid) return -ESRCH;
  return selfSignal(p, int(a[1]));
};

const tkill: SyscallHandler = (p, _t, a) => (int(a[0]) === p.tid ? selfSignal(p, int(a[1])) : int(a[0]) <= 0 ? -EINVAL : -ESRCH);

const tgkill: SyscallHandler = (p, _t, a) => {
  const tgid = int(a[0]);
  const tid = int(a[1]);
  if (tgid <= 0 || tid <= 0) return -EINVAL;
  if (tgid !== p.pid || tid !== p.tid) return -ESRCH;
  return selfSignal(p, int(a[2]));
};

// ---- futex: one thread, so waits never end ----

const futex: SyscallHandler = (p, _t, a) => {
  // alignment is checked on the raw value (ptr() folds non-user addresses onto USER_TOP)
  const uaddr = (a[0] ?? 0n) % 4n === 0n ? ptr(a[0]) : 1;
  const op = int(a[1]);
  const val = uint(a[2]);
  const cmd = op & FUTEX_CMD_MASK;
  switch (cmd) {
    case FUTEX_WAIT:
    case FUTEX_WAIT_BITSET: {
      if (uaddr % 4 !== 0) return -EINVAL;
      if (cmd === FUTEX_WAIT_BITSET && uint(a[5]) === 0) return -EINVAL;
      const current = p.aspace.readU32(uaddr);
      if (current !== val) return -EAGAIN;
      if ((a[3] ?? 0n) !== 0n) {
        if (readTimespec(p, ptr(a[3])) === null) return -EINVAL;
        return -ETIMEDOUT;
      }
      throw new GuestDeadlockError(
        `the guest waits on the futex at 0x${uaddr.toString(16)} (value ${val}) with no timeout and no other thread to wake it: it would block forever`,
      );
    }
    case FUTEX_WAKE:
    case FUTEX_REQUEUE:
      if (uaddr % 4 !== 0) return -EINVAL;
      return 0;
    case FUTEX_WAKE_BITSET:
      if (uaddr % 4 !== 0 || uint(a[5]) === 0) return -EINVAL;
      return 0;
    case FUTEX_CMP_REQUEUE:
      if (uaddr % 4 !== 0) return -EINVAL;
      return p.aspace.readU32(uaddr) === uint(a[5]) ? 0 : -EAGAIN;
    case FUTEX_WAKE_OP: {
      const uaddr2 = ptr(a[4]);
      if (uaddr % 4 !== 0 || uaddr2 % 4 !== 0) return -EINVAL;
      const encoded = uint(a[5]);
      let opKind = (encoded >>> 28) & 0xf;
      let oparg = ((encoded >>> 12) & 0xfff) << 20 >> 20; // sign-extend 12 bits
      if (opKind & 8) {
        opKind &= 7;
        if (oparg < 0 || oparg > 31) oparg &= 31;
        oparg = 1 << oparg;
      }
      const old = p.aspace.readU32(uaddr2);
      let next: number;
      switch (opKind) {
        case 0: next = oparg; break; // SET
        case 1: next = old + oparg; break; // ADD
        case 2: next = old | oparg; break; // OR
        case 3: next = old & ~oparg; break; // ANDN
        case 4: next = old ^ oparg; break; // XOR
        default: return -ENOSYS;
      }
      p.aspace.writeU32(uaddr2, next >>> 0);
      return 0;
    }
    default:
      return -ENOSYS;
  }
};

const schedYield: SyscallHandler = () => 0;
const rseq: SyscallHandler = () => -ENOSYS;

export const miscSyscalls: Record<string, SyscallHandler> = {
  exit,
  exit_group: exit,
  getpid,
  gettid: (p) => p.tid,
  getppid,
  getuid,
  geteuid: getuid,
  getgid,
  getegid: getgid,
  getresuid,
  getresgid,
  getgroups,
  getpgrp: getpid,
  getpgid,
  getsid: getpgid,
  set_tid_address: setTidAddress,
  set_robust_list: setRobustList,
  get_robust_list: getRobustList,
  uname,
  umask,
  arch_prctl: archPrctl,
  prctl,
  clock_gettime: clockGettime,
  clock_getres: clockGetres,
  gettimeofday,
  time,
  times,
  getrusage,
  nanosleep,
  clock_nanosleep: clockNanosleep,
  sysinfo,
  sched_getaffinity: schedGetaffinity,
  sched_setaffinity: schedSetaffinity,
  sched_yield: schedYield,
  getcpu,
  getrandom,
  prlimit64,
  getrlimit,
  setrlimit,
  rt_sigaction: rtSigaction,
  rt_sigprocmask: rtSigprocmask,
  sigaltstack,
  kill,
  tkill,
  tgkill,
  futex,
  rseq,
};

/** Linux's default limits for an unprivileged process, with an 8 MiB stack. */
export function defaultRlimits(stackSize: number): [bigint, bigint][] {
  const inf = RLIM_INFINITY;
  const limits: [bigint, bigint][] = Array.from({ length: RLIM_NLIMITS }, () => [inf, inf] as [bigint, bigint]);
  limits[3] = [BigInt(stackSize), inf]; // STACK
  limits[4] = [0n, inf]; // CORE
  limits[6] = [63_382n, 63_382n]; // NPROC
  limits[7] = [1024n, BigInt(FD_LIMIT_MAX)]; // NOFILE
  limits[8] = [8n * 1024n * 1024n, 8n * 1024n * 1024n]; // MEMLOCK
  limits[11] = [63_382n, 63_382n]; // SIGPENDING
  limits[12] = [819_200n, 819_200n]; // MSGQUEUE
  limits[13] = [0n, 0n]; // NICE
  limits[14] = [0n, 0n]; // RTPRIO
  return limits;
}

