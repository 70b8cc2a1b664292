/**
 * The guest process in SE mode: loads a static ELF like Linux's exec, owns the address space,
 * descriptors, RNG and signal bookkeeping, and answers syscalls for whichever CPU model runs
 * it. `snapshot()`/`restore()` carry everything except registers and memory contents.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { AddressSpace, validateAddressSpaceState, type AddressSpaceState } from './addressSpace.js';
import { parseElf, type ElfImage } from './elf.js';
import { ElfError, GuestSetupError, ProcessStateFormatError } from './errors.js';
import { FdTable, validateFdTableState } from './fdTable.js';
import {
  M5OP_PHYS,
  M5OP_SIZE,
  M5OP_VADDR,
  SE_WINDOW_END,
  SE_WINDOW_START,
  STACK_SIZE,
  STACK_TOP,
  USER_TOP,
  pageDown,
  pageUp,
} from './layout.js';
import { PROT_EXEC, PROT_READ, PROT_WRITE } from './pageTables.js';
import type { PhysicalMemory } from './physmem.js';
import { PAGE_SIZE } from './physmem.js';
import {
  PROCESS_STATE_VERSION,
  type ProcessState,
  type SignalState,
  asArray,
  asBigint,
  asBytes,
  asInt,
  asNullableInt,
  asObject,
  asString,
  fail,
} from './processState.js';
import { GuestRandom, type RandomState } from './random.js';
import { buildInitialStack } from './stack.js';
import { type SyscallOutcome, type SyscallThread, dispatchSyscall } from './syscalls.js';
import { syscallNumber } from './syscalls/names.js';
import { KSIGACTION_SIZE, NSIG, RLIM_NLIMITS, SS_DISABLE } from './syscalls/abi.js';
import { defaultRlimits } from './syscalls/misc.js';
import { type ThreadContext, initialThreadContext } from './threadContext.js';

export type { ProcessState } from './processState.js';

/** Where the guest's stdin/stdout/stderr go. */
export interface GuestIO {
  write(fd: 1 | 2, bytes: Uint8Array): void;
  /** Up to `max` bytes from stdin; an empty array is end of file. */
  read(fd: 0, max: number): Uint8Array;
}

export interface ProcessOptions {
  /** Host path of the executable (what /proc/self/exe resolves to). */
  exePath: string;
  argv: string[];
  envp: string[];
  /** Host directories the guest may open read-only (realpath of every opened file must lie under one). */
  allowRead: string[];
  /** The guest's working directory (getcwd); default the host's. */
  cwd?: string;
  seed: bigint;
  uid?: number;
  gid?: number;
  hwcap: number;
  hwcap2: number;
  hostname?: string;
  io?: GuestIO;
  warn?: (message: string) => void;
  /** An address space already holding the SE kernel's mappings (KVM); default a fresh one. */
  aspace?: AddressSpace;
  /** AT_EXECFN: the path as executed; default exePath as given. */
  execFn?: string;
  /** AT_MINSIGSTKSZ; default 3632 (x86-64 with AVX-512 state is larger; signals are never delivered). */
  minSigStkSz?: number;
  /** CLOCK_REALTIME at guest time 0, in ns since the epoch; default 2024-01-01T00:00:00Z. */
  epochNs?: bigint;
}

/** Host-side policy for a restored process (guest-visible facts come from the state). */
export interface RestoreOptions {
  allowRead: string[];
  /** Guest memory already holds the state's page tables (a handoff over shared memory): do not rewrite them. */
  memoryCurrent?: boolean;
  io?: GuestIO;
  warn?: (message: string) => void;
}

/**
 * Syscalls that never write guest memory or change its mappings (they read it at most). Any other
 * may have written anywhere: a parallel sampling worker then gets all of memory again
 * (Process.memoryWritingSyscalls).
 */
const MEMORY_NEUTRAL_SYSCALLS: ReadonlySet<number> = new Set(
  ['write', 'writev', 'pwrite64', 'close', 'lseek', 'dup', 'dup2', 'dup3', 'fsync', 'fdatasync', 'umask', 'sched_yield',
    'getpid', 'getppid', 'gettid', 'getuid', 'geteuid', 'getgid', 'getegid', 'exit', 'exit_group'].map(syscallNumber),
);

export const GUEST_PID = 1000;
export const GUEST_PPID = 999;
export const DEFAULT_HOSTNAME = 'switchsim';
export const DEFAULT_EPOCH_NS = 1_704_067_200n * 1_000_000_000n;
export const DEFAULT_MIN_SIGSTKSZ = 3632;

interface AllowedDir {
  lexical: string;
  real: string;
}

/** stdin/stdout/stderr of the host process, written and read synchronously. */
export function hostGuestIO(): GuestIO {
  return {
    write(fd, bytes) {
      let off = 0;
      while (off < bytes.length) {
        try {
          off += fs.writeSync(fd, bytes, off, bytes.length - off);
        } catch (e) {
          if ((e as { code?: string }).code !== 'EAGAIN') throw e;
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
        }
      }
    },
    read(_fd, max) {
      const buf = Buffer.alloc(Math.min(max, 65536));
      try {
        return buf.subarray(0, fs.readSync(0, buf, 0, buf.length, null));
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (code === 'EOF' || code === 'EAGAIN') return new Uint8Array(0);
        throw e;
      }
    },
  };
}

function resolveAllowRead(dirs: readonly string[]): AllowedDir[] {
  return dirs.map((d) => {
    const lexical = path.resolve(d);
    let real: string;
    try {
      real = fs.realpathSync(lexical);
    } catch {
      throw new ConfigError('--allow-read', `${d}: no such directory`);
    }
    if (!fs.statSync(real).isDirectory()) throw new ConfigError('--allow-read', `${d}: not a directory`);
    return { lexical, real };
  });
}

function emptySignals(): Process['signals'] {
  return { actions: new Map(), mask: 0n, altStack: { sp: 0n, flags: SS_DISABLE, size: 0n } };
}

interface ProcessInit {
  aspace: AddressSpace;
  fds: FdTable;
  random: GuestRandom;
  pid: number;
  ppid: number;
  uid: number;
  gid: number;
  exePath: string;
  cwd: string;
  hostname: string;
  epochNs: bigint;
  allowRead: AllowedDir[];
  io: GuestIO;
  warn: (message: string) => void;
}

export class Process {
  readonly aspace: AddressSpace;
  /** Syscalls so far that may have written guest memory or changed its mappings (MEMORY_NEUTRAL_SYSCALLS). */
  memoryWritingSyscalls = 0;
  fds: FdTable;
  random: GuestRandom;
  readonly pid: number;
  readonly tid: number;
  readonly ppid: number;
  readonly uid: number;
  readonly gid: number;
  /** Resolved host path of the executable (/proc/self/exe). */
  readonly exePath: string;
  cwd: string;
  readonly hostname: string;
  readonly epochNs: bigint;
  readonly allowRead: readonly AllowedDir[];
  readonly io: GuestIO;
  readonly warn: (message: string) => void;
  signals: { actions: Map<number, Uint8Array>; mask: bigint; altStack: { sp: bigint; flags: number; size: bigint } };
  tidAddress = 0n;
  robustList = { head: 0n, length: 0n };
  rlimits: [bigint, bigint][] = defaultRlimits(STACK_SIZE);
  umask = 0o022;
  /** Thread name (prctl PR_SET_NAME); not saved. */
  comm: string;
  /** Exit status once the guest exited, else null. */
  exitStatus: number | null = null;
  /** The signal that killed the guest (it raised a fatal signal on itself), else null. */
  exitSignal: number | null = null;
  /** Guest time at the last handoff (ProcessState.guestTimeNs): each model's clock starts here. */
  guestTimeNs = 0n;
  private readonly warnedSyscalls = new Set<number>();
  private readonly notes = new Set<string>();

  private constructor(init: ProcessInit) {
    this.aspace = init.aspace;
    this.fds = init.fds;
    this.random = init.random;
    this.pid = init.pid;
    this.tid = init.pid;
    this.ppid = init.ppid;
    this.uid = init.uid;
    this.gid = init.gid;
    this.exePath = init.exePath;
    this.cwd = init.cwd;
    this.hostname = init.hostname;
    this.epochNs = init.epochNs;
    this.allowRead = init.allowRead;
    this.io = init.io;
    this.warn = init.warn;
    this.signals = emptySignals();
    this.comm = path.basename(init.exePath).slice(0, 15);
  }

  /** Loads a static ELF like Linux's exec and returns the process and its first thread's registers. */
  static load(phys: PhysicalMemory, elfBytes: Uint8Array, opts: ProcessOptions): { process: Process; context: ThreadContext } {
    const image = parseElf(elfBytes, { memSize: phys.size });
    const aspace = opts.aspace ?? new AddressSpace(phys);
    if (aspace.phys !== phys && aspace.phys.handle !== phys.handle) {
      throw new GuestSetupError('Process.load: the address space belongs to other physical memory');
    }
    const allowRead = resolveAllowRead(opts.allowRead);
    const exeLexical = path.resolve(opts.exePath);
    let exePath = exeLexical;
    try {
      exePath = fs.realpathSync(exeLexical);
    } catch {
      // keep the lexical path: the bytes came from somewhere else
    }
    const uid = opts.uid ?? process.getuid?.() ?? 0;
    const gid = opts.gid ?? process.getgid?.() ?? 0;

    const bias = image.type === 'dyn' ? pieBias(aspace, image) : 0;
    loadSegments(aspace, image, elfBytes, bias, exePath);
    aspace.initBrk(pageUp(image.highestAddress + bias));
    // PT_GNU_STACK asks for an executable stack only when it says so (modern x86-64 default: NX).
    const stackProt = PROT_READ | PROT_WRITE | (image.gnuStack?.executable ? PROT_EXEC : 0);
    aspace.mapFixed(STACK_TOP - STACK_SIZE, STACK_SIZE, stackProt, 'stack', '[stack]');
    aspace.mapIo(M5OP_VADDR, M5OP_PHYS, M5OP_SIZE, PROT_READ | PROT_WRITE, '[m5op]');

    let phdr = image.phdrVaddr;
    if (phdr === undefined) phdr = placePhdrCopy(aspace, image, elfBytes);
    else phdr += bias;

    const random = GuestRandom.fromSeed(opts.seed);
    const entry = Number(image.entry) + bias;
    const stack = buildInitialStack(
      aspace,
      STACK_TOP,
      {
        argv: opts.argv,
        envp: opts.envp,
        execFn: opts.execFn ?? opts.exePath,
        random: random.bytes(16),
        hwcap: opts.hwcap,
        hwcap2: opts.hwcap2,
        minSigStkSz: opts.minSigStkSz ?? DEFAULT_MIN_SIGSTKSZ,
        phdr,
        phent: image.phentsize,
        phnum: image.phnum,
        entry,
        uid,
        gid,
      },
      STACK_SIZE,
    );
    const p = new Process({
      aspace,
      fds: FdTable.withStdio(),
      random,
      pid: GUEST_PID,
      ppid: GUEST_PPID,
      uid,
      gid,
      exePath,
      cwd: opts.cwd !== undefined ? path.resolve(opts.cwd) : process.cwd(),
      hostname: opts.hostname ?? DEFAULT_HOSTNAME,
      epochNs: opts.epochNs ?? DEFAULT_EPOCH_NS,
      allowRead,
      io: opts.io ?? hostGuestIO(),
      warn: opts.warn ?? ((m) => process.stderr.write(`switchsim: warning: ${m}\n`)),
    });
    return { process: p, context: initialThreadContext(BigInt(entry), BigInt(stack.rsp)) };
  }

  /** Rebuilds a process from a snapshot (validated: a bad field throws ProcessStateFormatError naming it). */
  static restore(phys: PhysicalMemory, state: unknown, opts: RestoreOptions): Process {
    const s = validateProcessState(state, phys.size);
    const allowRead = resolveAllowRead(opts.allowRead);
    const aspace = new AddressSpace(phys, s.addressSpace, opts.memoryCurrent ?? false);
    const mayOpen = (hostPath: string) => allowRead.some((d) => hostPath === d.real || hostPath.startsWith(`${d.real}/`));
    const fds = FdTable.restore(s.fds, mayOpen);
    const p = new Process({
      aspace,
      fds,
      random: GuestRandom.restore(s.random),
      pid: s.identity.pid,
      ppid: s.identity.ppid,
      uid: s.identity.uid,
      gid: s.identity.gid,
      exePath: s.identity.exePath,
      cwd: s.identity.cwd,
      hostname: s.identity.hostname,
      epochNs: s.identity.epochNs,
      allowRead,
      io: opts.io ?? hostGuestIO(),
      warn: opts.warn ?? ((m) => process.stderr.write(`switchsim: warning: ${m}\n`)),
    });
    p.takeMutableState(s);
    return p;
  }

  /** The per-process state a snapshot carries besides identity, address space and files. */
  private takeMutableState(s: ProcessState): void {
    this.random = GuestRandom.restore(s.random);
    this.cwd = s.identity.cwd;
    this.signals = {
      actions: new Map(s.signals.actions.map(([sig, b]) => [sig, b.slice()])),
      mask: s.signals.mask,
      altStack: { ...s.signals.altStack },
    };
    this.tidAddress = s.tidAddress;
    this.robustList = { ...s.robustList };
    this.rlimits = s.rlimits.map(([c, m]) => [c, m]);
    this.umask = s.umask;
    this.warnedSyscalls.clear();
    for (const nr of s.warnedSyscalls) this.warnedSyscalls.add(nr);
    this.exitStatus = s.exitStatus;
    this.exitSignal = s.exitSignal;
    this.guestTimeNs = s.guestTimeNs;
  }

  /**
   * Takes over a snapshot in place (a CPU model taking over from another): the address space
   * object stays the same, its contents and everything else mutable come from `state`. The
   * guest-visible identity must be this process's own. `s` must be validated (decodeProcessState).
   */
  adopt(s: ProcessState): void {
    if (s.identity.pid !== this.pid || s.identity.exePath !== this.exePath) {
      throw new ProcessStateFormatError('identity', `belongs to another process (pid ${s.identity.pid}, ${s.identity.exePath})`);
    }
    const mayOpen = (hostPath: string) => this.allowRead.some((d) => hostPath === d.real || hostPath.startsWith(`${d.real}/`));
    const fds = FdTable.restore(s.fds, mayOpen);
    this.aspace.adopt(s.addressSpace);
    this.fds.closeAll();
    this.fds = fds;
    this.takeMutableState(s);
  }

  snapshot(): ProcessState {
    return {
      version: PROCESS_STATE_VERSION,
      identity: {
        pid: this.pid,
        ppid: this.ppid,
        uid: this.uid,
        gid: this.gid,
        exePath: this.exePath,
        cwd: this.cwd,
        hostname: this.hostname,
        epochNs: this.epochNs,
      },
      addressSpace: this.aspace.snapshot(),
      fds: this.fds.snapshot(),
      random: this.random.snapshot(),
      signals: {
        actions: [...this.signals.actions].sort((a, b) => a[0] - b[0]).map(([sig, b]) => [sig, b.slice()]),
        mask: this.signals.mask,
        altStack: { ...this.signals.altStack },
      },
      tidAddress: this.tidAddress,
      robustList: { ...this.robustList },
      rlimits: this.rlimits.map(([c, m]) => [c, m]),
      umask: this.umask,
      warnedSyscalls: [...this.warnedSyscalls].sort((a, b) => a - b),
      exitStatus: this.exitStatus,
      exitSignal: this.exitSignal,
      guestTimeNs: this.guestTimeNs,
    };
  }

  /** Runs one syscall for `thread` (rax = nr, args = rdi, rsi, rdx, r10, r8, r9). */
  syscall(thread: SyscallThread, nr: number, args: readonly bigint[]): SyscallOutcome {
    if (!MEMORY_NEUTRAL_SYSCALLS.has(nr)) this.memoryWritingSyscalls++;
    return dispatchSyscall(this, thread, nr, args);
  }

  get exited(): boolean {
    return this.exitStatus !== null;
  }

  /** True the first time an unimplemented syscall number is seen (the caller warns). */
  noteUnknownSyscall(nr: number): boolean {
    nr = Number.isSafeInteger(nr) && nr >= 0 ? nr : Number.MAX_SAFE_INTEGER;
    if (this.warnedSyscalls.has(nr)) return false;
    this.warnedSyscalls.add(nr);
    return true;
  }

  /** Warns once per key for this process lifetime. */
  warnOnce(key: string, message: string): void {
    if (this.notes.has(key)) return;
    this.notes.add(key);
    this.warn(message);
  }

  /** Closes the host files the guest opened. */
  close(): void {
    this.fds.closeAll();
  }
}

// ---- loading ----

/** Static-PIE base: where Linux's first mmap would put the image (top-down), at its alignment. */
function pieBias(aspace: AddressSpace, image: ElfImage): number {
  const first = image.loads[0];
  if (!first) throw new ElfError('program headers', 'no PT_LOAD segment with memory');
  const lo = pageDown(first.vaddr);
  const span = pageUp(image.highestAddress) - lo;
  const align = Math.max(PAGE_SIZE, ...image.loads.map((l) => (l.align > 0 && (l.align & (l.align - 1)) === 0 ? l.align : PAGE_SIZE)));
  const at = aspace.findFree(span + align);
  if (at < 0) throw new ElfError('program headers', `no room for a ${span}-byte position-independent image`);
  const base = Math.floor((at + align - 1) / align) * align;
  return base - lo;
}

/**
 * Maps the PT_LOAD segments (page-rounded; a page shared by two segments gets the union of
 * their permissions) and fills them the way Linux's file mappings do: each segment's pages
 * come from the file from the page containing its first byte, then its bss is zeroed.
 */
function loadSegments(aspace: AddressSpace, image: ElfImage, file: Uint8Array, bias: number, exePath: string): void {
  const ranges = image.loads
    .filter((l) => l.memsz > 0)
    .map((l) => ({ start: pageDown(l.vaddr + bias), end: pageUp(l.vaddr + bias + l.memsz), prot: l.prot }));
  const cuts = [...new Set(ranges.flatMap((r) => [r.start, r.end]))].sort((a, b) => a - b);
  const pieces: { start: number; end: number; prot: number }[] = [];
  for (let i = 0; i + 1 < cuts.length; i++) {
    const start = cuts[i]!;
    const end = cuts[i + 1]!;
    let prot = -1;
    for (const r of ranges) if (r.start < end && start < r.end) prot = (prot < 0 ? 0 : prot) | r.prot;
    if (prot < 0) continue;
    const last = pieces[pieces.length - 1];
    if (last && last.end === start && last.prot === prot) last.end = end;
    else pieces.push({ start, end, prot });
  }
  for (const piece of pieces) {
    if (piece.end > STACK_TOP - STACK_SIZE || (piece.start < SE_WINDOW_END && SE_WINDOW_START < piece.end)) {
      throw new ElfError(
        'program headers',
        `segment pages 0x${piece.start.toString(16)}-0x${piece.end.toString(16)} overlap the stack or the SE/m5op window (0x${SE_WINDOW_START.toString(16)}-0x${SE_WINDOW_END.toString(16)})`,
      );
    }
    if (piece.end > USER_TOP) throw new ElfError('program headers', 'segment beyond user space');
    aspace.mapFixed(piece.start, piece.end - piece.start, piece.prot, 'elf', path.basename(exePath));
  }
  for (const l of image.loads) {
    if (l.memsz === 0) continue;
    const vaddr = l.vaddr + bias;
    if (l.filesz > 0) {
      const pageOff = vaddr % PAGE_SIZE;
      const fileStart = l.offset - pageOff;
      const mapEnd = pageUp(vaddr + l.filesz);
      const fileEnd = Math.min(file.length, fileStart + (mapEnd - (vaddr - pageOff)));
      aspace.writeUnchecked(vaddr - pageOff, file.subarray(fileStart, fileEnd));
    }
    if (l.memsz > l.filesz) {
      // bss: zero from the end of the file data to the end of the segment's last page
      const from = vaddr + l.filesz;
      const to = Math.min(pageUp(vaddr + l.memsz), pageUp(from));
      if (to > from) aspace.writeUnchecked(from, new Uint8Array(to - from));
    }
  }
}

/** When no segment maps the program headers, put a read-only copy on a page of its own (AT_PHDR). */
function placePhdrCopy(aspace: AddressSpace, image: ElfImage, file: Uint8Array): number {
  const phoff = Number(new DataView(file.buffer, file.byteOffset, file.length).getBigUint64(32, true));
  const bytes = file.subarray(phoff, phoff + image.phnum * image.phentsize);
  const at = aspace.mapAnywhere(pageUp(Math.max(bytes.length, 1)), PROT_READ, 'elf', '[phdr]');
  aspace.writeUnchecked(at, bytes);
  return at;
}

// ---- state validation ----

/**
 * Checks a value that claims to be a ProcessState; errors name the field. With `current`, an
 * address space at the same mapGeneration as it is taken as is (a handoff of an unchanged
 * address space: identical to `current` by construction, and never adopted).
 */
export function validateProcessState(value: unknown, memSize: number, current?: AddressSpace): ProcessState {
  const s = asObject(value, '(root)');
  if (s.version !== PROCESS_STATE_VERSION) fail('version', `expected ${PROCESS_STATE_VERSION}, got ${String(s.version)}`);
  const id = asObject(s.identity, 'identity');
  const identity = {
    pid: asInt(id.pid, 'identity.pid', 1, 4194304),
    ppid: asInt(id.ppid, 'identity.ppid', 0, 4194304),
    uid: asInt(id.uid, 'identity.uid', 0, 0xffffffff),
    gid: asInt(id.gid, 'identity.gid', 0, 0xffffffff),
    exePath: asString(id.exePath, 'identity.exePath'),
    cwd: asString(id.cwd, 'identity.cwd'),
    hostname: asString(id.hostname, 'identity.hostname'),
    epochNs: asBigint(id.epochNs, 'identity.epochNs'),
  };
  const rawAs = s.addressSpace as Partial<AddressSpaceState> | null | undefined;
  const addressSpace =
    current && typeof rawAs === 'object' && rawAs !== null && rawAs.mapGeneration === current.mapGeneration && rawAs.memSize === memSize
      ? (rawAs as AddressSpaceState)
      : validateAddressSpaceState(s.addressSpace, memSize, 'addressSpace');
  const fds = validateFdTableState(s.fds, 'fds');
  const randomArr = asArray(s.random, 'random');
  if (randomArr.length !== 4) fail('random', 'not 4 state words');
  const random = randomArr.map((w, i) => asInt(w, `random[${i}]`, 0, 0xffffffff)) as RandomState;
  if (random.every((w) => w === 0)) fail('random', 'all-zero generator state');
  const sig = asObject(s.signals, 'signals');
  const actions = asArray(sig.actions, 'signals.actions').map((x, i) => {
    const pair = asArray(x, `signals.actions[${i}]`);
    if (pair.length !== 2) fail(`signals.actions[${i}]`, 'not a (signal, action) pair');
    return [
      asInt(pair[0], `signals.actions[${i}][0]`, 1, NSIG),
      asBytes(pair[1], `signals.actions[${i}][1]`, KSIGACTION_SIZE),
    ] as [number, Uint8Array];
  });
  const alt = asObject(sig.altStack, 'signals.altStack');
  const signals: SignalState = {
    actions,
    mask: asBigint(sig.mask, 'signals.mask'),
    altStack: {
      sp: asBigint(alt.sp, 'signals.altStack.sp'),
      flags: asInt(alt.flags, 'signals.altStack.flags', 0, 0xffffffff),
      size: asBigint(alt.size, 'signals.altStack.size'),
    },
  };
  const robust = asObject(s.robustList, 'robustList');
  const rl = asArray(s.rlimits, 'rlimits');
  if (rl.length !== RLIM_NLIMITS) fail('rlimits', `expected ${RLIM_NLIMITS} limits, got ${rl.length}`);
  const rlimits = rl.map((x, i) => {
    const pair = asArray(x, `rlimits[${i}]`);
    if (pair.length !== 2) fail(`rlimits[${i}]`, 'not a (soft, hard) pair');
    const cur = asBigint(pair[0], `rlimits[${i}][0]`);
    const max = asBigint(pair[1], `rlimits[${i}][1]`);
    if (cur > max) fail(`rlimits[${i}]`, 'soft limit above hard limit');
    return [cur, max] as [bigint, bigint];
  });
  return {
    version: PROCESS_STATE_VERSION,
    identity,
    addressSpace,
    fds,
    random,
    signals,
    tidAddress: asBigint(s.tidAddress, 'tidAddress'),
    robustList: { head: asBigint(robust.head, 'robustList.head'), length: asBigint(robust.length, 'robustList.length') },
    rlimits,
    umask: asInt(s.umask, 'umask', 0, 0o777),
    warnedSyscalls: asArray(s.warnedSyscalls, 'warnedSyscalls').map((n, i) => asInt(n, `warnedSyscalls[${i}]`, 0)),
    exitStatus: asNullableInt(s.exitStatus, 'exitStatus', 0, 255),
    exitSignal: asNullableInt(s.exitSignal, 'exitSignal', 1, NSIG),
    guestTimeNs: s.guestTimeNs === undefined ? 0n : asBigint(s.guestTimeNs, 'guestTimeNs'),
  };
}
