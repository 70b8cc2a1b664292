/**
 * File syscalls. The guest sees the host's file system read-only, and only below the
 * directories the user allowed (paths resolved with realpath must stay under one); a few
 * devices (/dev/null, /dev/zero, /dev/urandom, /dev/random) and /proc/self/{exe,maps} are
 * emulated. stdin/stdout/stderr go through the process's GuestIO.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { OpenFile } from '../fdTable.js';
import { accessMode } from '../fdTable.js';
import type { Process } from '../process.js';
import { PAGE_SIZE } from '../physmem.js';
import { PM_FLAG_MASK, PM_IO, PM_MAPPED, PROT_EXEC, PROT_READ, PROT_WRITE } from '../pageTables.js';
import {
  AT_EACCESS,
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_NO_AUTOMOUNT,
  AT_SYMLINK_NOFOLLOW,
  DIRENT64_HEADER,
  DT_BLK,
  DT_CHR,
  DT_DIR,
  DT_FIFO,
  DT_LNK,
  DT_REG,
  DT_SOCK,
  DT_UNKNOWN,
  FASYNC,
  FD_CLOEXEC,
  FIOCLEX,
  FIONBIO,
  FIONCLEX,
  F_DUPFD,
  F_DUPFD_CLOEXEC,
  F_GETFD,
  F_GETFL,
  F_GETLK,
  F_SETFD,
  F_SETFL,
  F_SETLK,
  F_SETLKW,
  MAX_RW_COUNT,
  O_ACCMODE,
  O_APPEND,
  O_CLOEXEC,
  O_CREAT,
  O_DIRECT,
  O_DIRECTORY,
  O_LARGEFILE,
  O_NOATIME,
  O_NOFOLLOW,
  O_NONBLOCK,
  O_PATH,
  O_RDONLY,
  O_RDWR,
  O_TMPFILE,
  O_TRUNC,
  O_WRONLY,
  PATH_MAX,
  RLIMIT_NOFILE,
  R_OK,
  SEEK_CUR,
  SEEK_DATA,
  SEEK_END,
  SEEK_HOLE,
  SEEK_SET,
  STAT,
  STAT_SIZE,
  S_IFCHR,
  S_IFIFO,
  S_IFREG,
  UIO_MAXIOV,
  W_OK,
} from './abi.js';
import {
  EACCES,
  EBADF,
  EINVAL,
  EISDIR,
  ELOOP,
  EMFILE,
  ENAMETOOLONG,
  ENODEV,
  ENOENT,
  ENOTDIR,
  ENOTTY,
  ERANGE,
  ESPIPE,
  errnoFromNode,
} from './errno.js';
import { type SyscallHandler, int, long, ptr, size, uint } from './util.js';

const ENXIO = 6;

// ---- path resolution ----

type Special = '/dev/null' | '/dev/zero' | '/dev/urandom' | '/dev/random' | 'maps';

type Resolved = { special: Special; path: string } | { special: null; path: string };

function isUnder(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

/** Reads a path argument; a negated errno for a bad pointer/overlong path. */
function readPath(p: Process, a: bigint | undefined): string | number {
  const s = p.aspace.readCString(ptr(a), PATH_MAX - 1);
  return s === null ? -ENAMETOOLONG : s;
}

/** The absolute guest path of `pathname` relative to dirfd (or the cwd). */
function absolutePath(p: Process, dirfd: number, pathname: string): string | number {
  if (pathname.startsWith('/')) return path.posix.resolve(pathname);
  if (dirfd === AT_FDCWD) return path.posix.resolve(p.cwd, pathname);
  const f = p.fds.get(dirfd);
  if (!f) return -EBADF;
  if (f.kind !== 'dir') return -ENOTDIR;
  return path.posix.resolve(f.path, pathname);
}

function procSelf(p: Process, abs: string): string | null {
  const m = /^\/proc\/(self|thread-self|\d+)\/(.*)$/.exec(abs);
  if (!m) return null;
  if (m[1] !== 'self' && m[1] !== 'thread-self' && Number(m[1]) !== p.pid) return null;
  return m[2]!;
}

function resolve(p: Process, dirfd: number, pathname: string): Resolved | number {
  if (pathname === '') return -ENOENT;
  const abs = absolutePath(p, dirfd, pathname);
  if (typeof abs === 'number') return abs;
  if (abs === '/dev/null' || abs === '/dev/zero' || abs === '/dev/urandom' || abs === '/dev/random') {
    return { special: abs, path: abs };
  }
  if (procSelf(p, abs) === 'maps') return { special: 'maps', path: abs };
  return { special: null, path: abs };
}

/**
 * The host path the guest may read: the lexical path must lie under an allowed directory, and
 * so must its realpath (no symlink escapes). `follow=false` keeps a final symlink (lstat).
 */
export function allowedHostPath(p: Process, abs: string, follow = true): string | number {
  if (!p.allowRead.some((d) => isUnder(abs, d.lexical) || isUnder(abs, d.real))) return -EACCES;
  let real: string;
  try {
    real = follow ? fs.realpathSync(abs) : path.posix.join(fs.realpathSync(path.posix.dirname(abs)), path.posix.basename(abs));
    if (!follow) fs.lstatSync(real);
  } catch (e) {
    return -errnoFromNode(e);
  }
  if (!p.allowRead.some((d) => isUnder(real, d.real))) return -EACCES;
  return real;
}

// ---- struct stat ----

const statBuf = new Uint8Array(STAT_SIZE);
const statView = new DataView(statBuf.buffer);

interface StatFields {
  dev: bigint;
  ino: bigint;
  nlink: bigint;
  mode: number;
  uid: number;
  gid: number;
  rdev: bigint;
  size: bigint;
  blksize: bigint;
  blocks: bigint;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

function writeStat(p: Process, addr: number, s: StatFields): void {
  statBuf.fill(0);
  const v = statView;
  v.setBigUint64(STAT.dev, s.dev, true);
  v.setBigUint64(STAT.ino, s.ino, true);
  v.setBigUint64(STAT.nlink, s.nlink, true);
  v.setUint32(STAT.mode, s.mode, true);
  v.setUint32(STAT.uid, s.uid >>> 0, true);
  v.setUint32(STAT.gid, s.gid >>> 0, true);
  v.setBigUint64(STAT.rdev, s.rdev, true);
  v.setBigInt64(STAT.size, s.size, true);
  v.setBigInt64(STAT.blksize, s.blksize, true);
  v.setBigInt64(STAT.blocks, s.blocks, true);
  const times: [number, number, bigint][] = [
    [STAT.atime, STAT.atimeNsec, s.atimeNs],
    [STAT.mtime, STAT.mtimeNsec, s.mtimeNs],
    [STAT.ctime, STAT.ctimeNsec, s.ctimeNs],
  ];
  for (const [secOff, nsOff, ns] of times) {
    v.setBigInt64(secOff, ns / 1_000_000_000n, true);
    v.setBigInt64(nsOff, ns % 1_000_000_000n, true);
  }
  p.aspace.write(addr, statBuf);
}

function hostStat(st: fs.BigIntStats): StatFields {
  return {
    dev: st.dev,
    ino: st.ino,
    nlink: st.nlink,
    mode: Number(st.mode),
    uid: Number(st.uid),
    gid: Number(st.gid),
    rdev: st.rdev,
    size: st.size,
    blksize: st.blksize,
    blocks: st.blocks,
    atimeNs: st.atimeNs,
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
  };
}

function makedev(major: number, minor: number): bigint {
  return BigInt((major << 8) | minor);
}

function syntheticStat(p: Process, mode: number, ino: number, rdev: bigint, dev = 5n): StatFields {
  return {
    dev,
    ino: BigInt(ino),
    nlink: 1n,
    mode,
    uid: p.uid,
    gid: p.gid,
    rdev,
    size: 0n,
    blksize: BigInt(PAGE_SIZE),
    blocks: 0n,
    atimeNs: 0n,
    mtimeNs: 0n,
    ctimeNs: 0n,
  };
}

function specialStat(p: Process, s: Special): StatFields {
  switch (s) {
    case '/dev/null': return syntheticStat(p, S_IFCHR | 0o666, 4, makedev(1, 3));
    case '/dev/zero': return syntheticStat(p, S_IFCHR | 0o666, 5, makedev(1, 5));
    case '/dev/random': return syntheticStat(p, S_IFCHR | 0o666, 8, makedev(1, 8));
    case '/dev/urandom': return syntheticStat(p, S_IFCHR | 0o666, 9, makedev(1, 9));
    case 'maps': return { ...syntheticStat(p, S_IFREG | 0o444, 100, 0n, 0x16n), blksize: 1024n };
  }
}

/** stat of an open file: host files from fstat; stdio are pipes (deterministic whatever the host redirects). */
function fileStat(p: Process, f: OpenFile): StatFields {
  switch (f.kind) {
    case 'stdin':
    case 'stdout':
    case 'stderr':
      return syntheticStat(p, S_IFIFO | 0o600, 1 + ['stdin', 'stdout', 'stderr'].indexOf(f.kind), 0n, 0xdn);
    case 'null': return specialStat(p, '/dev/null');
    case 'zero': return specialStat(p, '/dev/zero');
    case 'random': return specialStat(p, f.path === '/dev/random' ? '/dev/random' : '/dev/urandom');
    case 'memory': return specialStat(p, 'maps');
    case 'file':
    case 'dir':
      return hostStat(fs.fstatSync(f.hostFd, { bigint: true }));
  }
}

// ---- data movement ----

/**
 * Reads from a host file straight into guest memory (page runs; no copy). Stops at EOF or at
 * the first inaccessible page; faults only when nothing was read. `checked=false` ignores
 * page protection (mmap of a file into a read-only mapping).
 */
function readHostIntoGuest(p: Process, hostFd: number, vaddr: number, count: number, position: number, checked = true): number {
  const as = p.aspace;
  const bytes = as.phys.bytes;
  let done = 0;
  while (done < count) {
    const va = vaddr + done;
    let pa: number;
    if (checked) {
      try {
        pa = as.userPhys(va, 'write');
      } catch (e) {
        if (done > 0) break;
        throw e;
      }
    } else {
      const e = as.pageTables.entry(va);
      if (!(e & PM_MAPPED) || e & PM_IO) break;
      pa = e - (e & PM_FLAG_MASK) + (va % PAGE_SIZE);
    }
    const n = Math.min(count - done, PAGE_SIZE - (va % PAGE_SIZE));
    const got = fs.readSync(hostFd, bytes, pa, n, position + done);
    done += got;
    if (got < n) break;
  }
  return done;
}

/** Copies `data` into guest memory at vaddr (checked); returns the count. */
function copyToGuest(p: Process, vaddr: number, data: Uint8Array): number {
  p.aspace.write(vaddr, data);
  return data.length;
}

/** The guest bytes [vaddr, vaddr+count): a view of physical memory when contiguous, else a copy. */
export function guestBytes(p: Process, vaddr: number, count: number): Uint8Array {
  return p.aspace.userView(vaddr, count, 'read') ?? p.aspace.read(vaddr, count);
}

function readFrom(p: Process, f: OpenFile, buf: number, count: number, position: number | null): number {
  switch (f.kind) {
    case 'stdin': {
      if (position !== null) return -ESPIPE;
      if (count === 0) return 0;
      p.aspace.checkAccess(buf, 1, 'write');
      const data = p.io.read(0, count);
      return copyToGuest(p, buf, data.length > count ? data.subarray(0, count) : data);
    }
    case 'stdout':
    case 'stderr':
      return -EBADF;
    case 'dir':
      return -EISDIR;
    case 'null':
      return 0;
    case 'zero':
      p.aspace.zero(buf, count);
      return count;
    case 'random': {
      const data = p.random.bytes(Math.min(count, 1 << 20));
      return copyToGuest(p, buf, data);
    }
    case 'memory': {
      const contents = f.contents ?? new Uint8Array(0);
      const at = position ?? f.offset;
      const data = contents.subarray(Math.min(at, contents.length), Math.min(at + count, contents.length));
      const n = copyToGuest(p, buf, data);
      if (position === null) f.offset += n;
      return n;
    }
    case 'file': {
      if (count === 0) return 0;
      const n = readHostIntoGuest(p, f.hostFd, buf, count, position ?? f.offset);
      if (position === null) f.offset += n;
      return n;
    }
  }
}

function writeTo(p: Process, f: OpenFile, buf: number, count: number, position: number | null): number {
  switch (f.kind) {
    case 'stdout':
    case 'stderr': {
      if (position !== null) return -ESPIPE;
      if (count === 0) return 0;
      p.io.write(f.kind === 'stdout' ? 1 : 2, guestBytes(p, buf, count));
      return count;
    }
    case 'null':
    case 'zero':
    case 'random':
      p.aspace.checkAccess(buf, count, 'read');
      return count;
    default:
      return -EBADF;
  }
}

function fileFor(p: Process, fdArg: bigint | undefined): OpenFile | undefined {
  const f = p.fds.get(int(fdArg));
  return f && !(f.flags & O_PATH) ? f : undefined;
}

const read: SyscallHandler = (p, _t, a) => {
  const f = fileFor(p, a[0]);
  if (!f || accessMode(f) === O_WRONLY) return -EBADF;
  return readFrom(p, f, ptr(a[1]), Math.min(size(a[2]), MAX_RW_COUNT), null);
};

const write: SyscallHandler = (p, _t, a) => {
  const f = fileFor(p, a[0]);
  if (!f || accessMode(f) === O_RDONLY) return -EBADF;
  return writeTo(p, f, ptr(a[1]), Math.min(size(a[2]), MAX_RW_COUNT), null);
};

const pread64: SyscallHandler = (p, _t, a) => {
  const f = fileFor(p, a[0]);
  if (!f || accessMode(f) === O_WRONLY) return -EBADF;
  const off = long(a[3]);
  if (off < 0) return -EINVAL;
  if (f.kind === 'null' || f.kind === 'zero' || f.kind === 'random') return readFrom(p, f, ptr(a[1]), Math.min(size(a[2]), MAX_RW_COUNT), null);
  return readFrom(p, f, ptr(a[1]), Math.min(size(a[2]), MAX_RW_COUNT), off);
};

const pwrite64: SyscallHandler = (p, _t, a) => {
  const f = fileFor(p, a[0]);
  if (!f || accessMode(f) === O_RDONLY) return -EBADF;
  if (long(a[3]) < 0) return -EINVAL;
  return writeTo(p, f, ptr(a[1]), Math.min(size(a[2]), MAX_RW_COUNT), f.kind === 'null' ? null : long(a[3]));
};

/** Reads an iovec array: [base, len] pairs, or a negated errno. */
function readIovecs(p: Process, addr: bigint | undefined, cnt: bigint | undefined): [number, number][] | number {
  const n = int(cnt);
  if (n < 0 || n > UIO_MAXIOV) return -EINVAL;
  if (n === 0) return [];
  const raw = p.aspace.read(ptr(addr), n * 16);
  const v = new DataView(raw.buffer);
  const out: [number, number][] = [];
  let total = 0;
  for (let i = 0; i < n; i++) {
    const len = v.getBigInt64(i * 16 + 8, true);
    if (len < 0n) return -EINVAL;
    const l = Number(len);
    total += l;
    if (total > 0x7fffffffffff) return -EINVAL;
    out.push([ptr(v.getBigUint64(i * 16, true)), l]);
  }
  return out;
}

function readvAt(p: Process, a: readonly bigint[], position: number | null): number {
  const f = fileFor(p, a[0]);
  if (!f || accessMode(f) === O_WRONLY) return -EBADF;
  const iov = readIovecs(p, a[1], a[2]);
  if (typeof iov === 'number') return iov;
  if (f.kind === 'stdin') {
    // One host read, scattered over the buffers.
    const total = Math.min(iov.reduce((s, [, l]) => s + l, 0), MAX_RW_COUNT);
    if (total === 0) return 0;
    for (const [base, len] of iov) if (len > 0) p.aspace.checkAccess(base, len, 'write');
    const data = p.io.read(0, total);
    let at = 0;
    for (const [base, len] of iov) {
      if (at >= data.length) break;
      const piece = data.subarray(at, Math.min(at + len, data.length));
      p.aspace.write(base, piece);
      at += piece.length;
    }
    return at;
  }
  let done = 0;
  for (const [base, len] of iov) {
    if (len === 0) continue;
    const want = Math.min(len, MAX_RW_COUNT - done);
    let n: number;
    try {
      n = readFrom(p, f, base, want, position === null ? null : position + done);
    } catch (e) {
      if (done > 0) return done;
      throw e;
    }
    if (n < 0) return done > 0 ? done : n;
    done += n;
    if (n < want || done >= MAX_RW_COUNT) break;
  }
  return done;
}

function writevAt(p: Process, a: readonly bigint[], position: number | null): number {
  const f = fileFor(p, a[0]);
  if (!f || accessMode(f) === O_RDONLY) return -EBADF;
  const iov = readIovecs(p, a[1], a[2]);
  if (typeof iov === 'number') return iov;
  const parts = iov.filter(([, l]) => l > 0);
  if (parts.length === 0) return 0;
  if (f.kind === 'stdout' || f.kind === 'stderr') {
    if (position !== null) return -ESPIPE;
    let total = 0;
    const chunks: Uint8Array[] = [];
    for (const [base, len] of parts) {
      const take = Math.min(len, MAX_RW_COUNT - total);
      chunks.push(guestBytes(p, base, take));
      total += take;
      if (total >= MAX_RW_COUNT) break;
    }
    let data: Uint8Array;
    if (chunks.length === 1) {
      data = chunks[0]!;
    } else {
      data = new Uint8Array(total);
      let at = 0;
      for (const c of chunks) {
        data.set(c, at);
        at += c.length;
      }
    }
    p.io.write(f.kind === 'stdout' ? 1 : 2, data);
    return total;
  }
  let done = 0;
  for (const [base, len] of parts) {
    const n = writeTo(p, f, base, len, null);
    if (n < 0) return done > 0 ? done : n;
    done += n;
  }
  return done;
}

const readv: SyscallHandler = (p, _t, a) => readvAt(p, a, null);
const writev: SyscallHandler = (p, _t, a) => writevAt(p, a, null);
const preadv: SyscallHandler = (p, _t, a) => {
  const off = long(a[3]);
  if (off < 0) return -EINVAL;
  const f = fileFor(p, a[0]);
  if (f && (f.kind === 'stdin' || f.kind === 'stdout' || f.kind === 'stderr')) return -ESPIPE;
  return readvAt(p, a, off);
};

// ---- open/close ----

/** Flags F_GETFL reports for a newly opened description (Linux forces O_LARGEFILE on 64-bit). */
function statusFlags(flags: number): number {
  return (flags & (O_ACCMODE | O_APPEND | O_NONBLOCK | O_DIRECT | O_NOATIME | FASYNC | O_PATH)) | O_LARGEFILE;
}

function fdLimit(p: Process): number {
  return Number(p.rlimits[RLIMIT_NOFILE]![0]);
}

function install(p: Process, f: OpenFile, flags: number): number {
  const fd = p.fds.install(f, (flags & O_CLOEXEC) !== 0, fdLimit(p));
  if (fd < 0) {
    if (f.refs === 0 && f.hostFd >= 0) fs.closeSync(f.hostFd);
    return -EMFILE;
  }
  return fd;
}

/** /proc/self/maps of the guest, as Linux formats it. */
export function procMaps(p: Process): Uint8Array {
  const lines: string[] = [];
  const hex = (n: number) => n.toString(16).padStart(8, '0');
  for (const v of p.aspace.vmas) {
    const perms = `${v.prot & PROT_READ ? 'r' : '-'}${v.prot & PROT_WRITE ? 'w' : '-'}${v.prot & PROT_EXEC ? 'x' : '-'}p`;
    const name = v.kind === 'elf' ? p.exePath : v.name;
    const head = `${hex(v.start)}-${hex(v.end)} ${perms} 00000000 00:00 0`;
    lines.push(name ? `${head.padEnd(73)}${name}` : head);
  }
  return Buffer.from(lines.map((l) => `${l}\n`).join(''), 'utf8');
}

function openAt(p: Process, dirfd: number, pathArg: bigint | undefined, flags: number): number {
  const pathname = readPath(p, pathArg);
  if (typeof pathname === 'number') return pathname;
  const r = resolve(p, dirfd, pathname);
  if (typeof r === 'number') return r;
  const acc = flags & O_ACCMODE;
  if (acc === O_ACCMODE) return -EINVAL;
  const wantsWrite = acc !== O_RDONLY || (flags & (O_CREAT | O_TRUNC)) !== 0 || (flags & O_TMPFILE) === O_TMPFILE;
  if (r.special !== null) {
    if (flags & O_DIRECTORY) return -ENOTDIR;
    if (r.special === 'maps') {
      if (wantsWrite) return -EACCES;
      return install(p, p.fds.newFile('memory', r.path, -1, statusFlags(flags), procMaps(p)), flags);
    }
    const kind = r.special === '/dev/null' ? 'null' : r.special === '/dev/zero' ? 'zero' : 'random';
    return install(p, p.fds.newFile(kind, r.path, -1, statusFlags(flags & ~(O_CREAT | O_TRUNC))), flags);
  }
  if (wantsWrite) return -EACCES;
  if (flags & O_NOFOLLOW) {
    const lexical = allowedHostPath(p, r.path, false);
    if (typeof lexical === 'number') return lexical;
    if (fs.lstatSync(lexical).isSymbolicLink()) return -ELOOP;
  }
  const host = allowedHostPath(p, r.path);
  if (typeof host === 'number') return host;
  let st: fs.Stats;
  try {
    st = fs.statSync(host);
  } catch (e) {
    return -errnoFromNode(e);
  }
  const isDir = st.isDirectory();
  if (flags & O_DIRECTORY && !isDir) return -ENOTDIR;
  if (!isDir && !st.isFile()) return -EACCES; // FIFOs, devices, sockets on the host: never
  let hostFd: number;
  try {
    hostFd = fs.openSync(host, fs.constants.O_RDONLY | (isDir ? fs.constants.O_DIRECTORY : 0));
  } catch (e) {
    return -errnoFromNode(e);
  }
  return install(p, p.fds.newFile(isDir ? 'dir' : 'file', host, hostFd, statusFlags(flags)), flags);
}

const open: SyscallHandler = (p, _t, a) => openAt(p, AT_FDCWD, a[0], int(a[1]));
const openat: SyscallHandler = (p, _t, a) => openAt(p, int(a[0]), a[1], int(a[2]));
const creat: SyscallHandler = () => -EACCES;

const close: SyscallHandler = (p, _t, a) => (p.fds.close(int(a[0])) ? 0 : -EBADF);

// ---- stat ----

function statPath(p: Process, dirfd: number, pathArg: bigint | undefined, buf: number, flags: number): number {
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT)) return -EINVAL;
  const pathname = readPath(p, pathArg);
  if (typeof pathname === 'number') return pathname;
  let target = pathname;
  if (pathname === '' && flags & AT_EMPTY_PATH) {
    if (dirfd === AT_FDCWD) {
      target = '.';
    } else {
      const f = p.fds.get(dirfd);
      if (!f) return -EBADF;
      writeStat(p, buf, fileStat(p, f));
      return 0;
    }
  }
  const r = resolve(p, dirfd, target);
  if (typeof r === 'number') return r;
  if (r.special !== null) {
    writeStat(p, buf, specialStat(p, r.special));
    return 0;
  }
  const host = allowedHostPath(p, r.path, !(flags & AT_SYMLINK_NOFOLLOW));
  if (typeof host === 'number') return host;
  let st: fs.BigIntStats;
  try {
    st = flags & AT_SYMLINK_NOFOLLOW ? fs.lstatSync(host, { bigint: true }) : fs.statSync(host, { bigint: true });
  } catch (e) {
    return -errnoFromNode(e);
  }
  writeStat(p, buf, hostStat(st));
  return 0;
}

const stat: SyscallHandler = (p, _t, a) => statPath(p, AT_FDCWD, a[0], ptr(a[1]), 0);
const lstat: SyscallHandler = (p, _t, a) => statPath(p, AT_FDCWD, a[0], ptr(a[1]), AT_SYMLINK_NOFOLLOW);
const newfstatat: SyscallHandler = (p, _t, a) => statPath(p, int(a[0]), a[1], ptr(a[2]), int(a[3]));
const fstat: SyscallHandler = (p, _t, a) => {
  const f = p.fds.get(int(a[0]));
  if (!f) return -EBADF;
  writeStat(p, ptr(a[1]), fileStat(p, f));
  return 0;
};

// ---- lseek, getdents64 ----

const lseek: SyscallHandler = (p, _t, a) => {
  const f = fileFor(p, a[0]);
  if (!f) return -EBADF;
  const off = long(a[1]);
  const whence = uint(a[2]);
  if (f.kind === 'stdin' || f.kind === 'stdout' || f.kind === 'stderr') return -ESPIPE;
  if (f.kind === 'null' || f.kind === 'zero' || f.kind === 'random') return whence <= SEEK_END ? 0 : -EINVAL;
  if (f.kind === 'dir') {
    if (whence === SEEK_SET && off >= 0) {
      f.offset = off;
      return off;
    }
    if (whence === SEEK_CUR && off === 0) return f.offset;
    return -EINVAL;
  }
  const fileSize = f.kind === 'memory' ? (f.contents?.length ?? 0) : Number(fs.fstatSync(f.hostFd).size);
  let pos: number;
  switch (whence) {
    case SEEK_SET: pos = off; break;
    case SEEK_CUR: pos = f.offset + off; break;
    case SEEK_END: pos = fileSize + off; break;
    case SEEK_DATA:
      if (off < 0) return -EINVAL;
      if (off >= fileSize) return -ENXIO;
      pos = off;
      break;
    case SEEK_HOLE:
      if (off < 0) return -EINVAL;
      if (off >= fileSize) return -ENXIO;
      pos = fileSize;
      break;
    default:
      return -EINVAL;
  }
  if (pos < 0) return -EINVAL;
  f.offset = pos;
  return pos;
};

function direntType(d: fs.Dirent): number {
  if (d.isFile()) return DT_REG;
  if (d.isDirectory()) return DT_DIR;
  if (d.isSymbolicLink()) return DT_LNK;
  if (d.isFIFO()) return DT_FIFO;
  if (d.isCharacterDevice()) return DT_CHR;
  if (d.isBlockDevice()) return DT_BLK;
  if (d.isSocket()) return DT_SOCK;
  return DT_UNKNOWN;
}

const getdents64: SyscallHandler = (p, _t, a) => {
  const f = fileFor(p, a[0]);
  if (!f) return -EBADF;
  if (f.kind !== 'dir') return -ENOTDIR;
  if (!f.entries) {
    const ino = (q: string) => {
      try {
        return fs.lstatSync(q, { bigint: true }).ino;
      } catch {
        return 0n;
      }
    };
    f.entries = [
      { name: '.', ino: ino(f.path), type: DT_DIR },
      { name: '..', ino: ino(path.posix.dirname(f.path)), type: DT_DIR },
      ...fs.readdirSync(f.path, { withFileTypes: true }).map((d) => ({
        name: d.name,
        ino: ino(path.posix.join(f.path, d.name)),
        type: direntType(d),
      })),
    ];
  }
  const buf = ptr(a[1]);
  const count = Math.min(size(a[2]), MAX_RW_COUNT);
  const out: Uint8Array[] = [];
  let used = 0;
  let i = f.offset;
  for (; i < f.entries.length; i++) {
    const e = f.entries[i]!;
    const name = Buffer.from(e.name, 'utf8');
    const reclen = (DIRENT64_HEADER + name.length + 1 + 7) & ~7;
    if (used + reclen > count) break;
    const rec = new Uint8Array(reclen);
    const v = new DataView(rec.buffer);
    v.setBigUint64(0, e.ino, true);
    v.setBigInt64(8, BigInt(i + 1), true);
    v.setUint16(16, reclen, true);
    rec[18] = e.type;
    rec.set(name, DIRENT64_HEADER);
    out.push(rec);
    used += reclen;
  }
  if (out.length === 0 && i < f.entries.length) return -EINVAL;
  let at = buf;
  for (const rec of out) {
    p.aspace.write(at, rec);
    at += rec.length;
  }
  f.offset = i;
  return used;
};

// ---- readlink, getcwd, chdir ----

function readlinkAt(p: Process, dirfd: number, pathArg: bigint | undefined, bufArg: bigint | undefined, sizeArg: bigint | undefined): number {
  const bufsiz = int(sizeArg);
  if (bufsiz <= 0) return -EINVAL;
  const pathname = readPath(p, pathArg);
  if (typeof pathname === 'number') return pathname;
  if (pathname === '') return -ENOENT;
  const abs = absolutePath(p, dirfd, pathname);
  if (typeof abs === 'number') return abs;
  let target: string;
  const self = procSelf(p, abs);
  const fdLink = self === null ? null : /^fd\/(\d+)$/.exec(self);
  if (self === 'exe') {
    target = p.exePath;
  } else if (self === 'cwd') {
    target = p.cwd;
  } else if (fdLink) {
    const f = p.fds.get(Number(fdLink[1]));
    if (!f) return -ENOENT;
    target = f.kind === 'stdin' || f.kind === 'stdout' || f.kind === 'stderr' ? `pipe:[${1 + ['stdin', 'stdout', 'stderr'].indexOf(f.kind)}]` : f.path;
  } else {
    const host = allowedHostPath(p, abs, false);
    if (typeof host === 'number') return host;
    try {
      target = fs.readlinkSync(host);
    } catch (e) {
      return -errnoFromNode(e);
    }
  }
  const bytes = Buffer.from(target, 'utf8');
  const n = Math.min(bytes.length, bufsiz);
  p.aspace.write(ptr(bufArg), bytes.subarray(0, n));
  return n;
}

const readlink: SyscallHandler = (p, _t, a) => readlinkAt(p, AT_FDCWD, a[0], a[1], a[2]);
const readlinkat: SyscallHandler = (p, _t, a) => readlinkAt(p, int(a[0]), a[1], a[2], a[3]);

const getcwd: SyscallHandler = (p, _t, a) => {
  const bytes = Buffer.from(`${p.cwd}\0`, 'utf8');
  if (size(a[1]) < bytes.length) return -ERANGE;
  p.aspace.write(ptr(a[0]), bytes);
  return bytes.length;
};

const chdir: SyscallHandler = (p, _t, a) => {
  const pathname = readPath(p, a[0]);
  if (typeof pathname === 'number') return pathname;
  const r = resolve(p, AT_FDCWD, pathname);
  if (typeof r === 'number') return r;
  if (r.special !== null) return -ENOTDIR;
  const host = allowedHostPath(p, r.path);
  if (typeof host === 'number') return host;
  if (!fs.statSync(host).isDirectory()) return -ENOTDIR;
  p.cwd = host;
  return 0;
};

const fchdir: SyscallHandler = (p, _t, a) => {
  const f = p.fds.get(int(a[0]));
  if (!f) return -EBADF;
  if (f.kind !== 'dir') return -ENOTDIR;
  p.cwd = f.path;
  return 0;
};

// ---- dup, fcntl, ioctl ----

const dup: SyscallHandler = (p, _t, a) => {
  const f = p.fds.get(int(a[0]));
  if (!f) return -EBADF;
  const fd = p.fds.install(f, false, fdLimit(p));
  return fd < 0 ? -EMFILE : fd;
};

function dupTo(p: Process, oldfd: number, newfd: number, cloexec: boolean): number {
  const f = p.fds.get(oldfd);
  if (!f) return -EBADF;
  if (newfd < 0 || newfd >= fdLimit(p)) return -EBADF;
  p.fds.installAt(newfd, f, cloexec);
  return newfd;
}

const dup2: SyscallHandler = (p, _t, a) => {
  const oldfd = int(a[0]);
  const newfd = int(a[1]);
  if (oldfd === newfd) return p.fds.get(oldfd) ? newfd : -EBADF;
  return dupTo(p, oldfd, newfd, false);
};

const dup3: SyscallHandler = (p, _t, a) => {
  const flags = int(a[2]);
  if (flags & ~O_CLOEXEC) return -EINVAL;
  const oldfd = int(a[0]);
  const newfd = int(a[1]);
  if (oldfd === newfd) return -EINVAL;
  return dupTo(p, oldfd, newfd, (flags & O_CLOEXEC) !== 0);
};

const F_GETPIPE_SZ = 1032;
const F_OFD_GETLK = 36;
const F_OFD_SETLK = 37;
const F_OFD_SETLKW = 38;
const F_UNLCK = 2;

const fcntl: SyscallHandler = (p, _t, a) => {
  const fd = int(a[0]);
  const f = p.fds.get(fd);
  if (!f) return -EBADF;
  const cmd = int(a[1]);
  const arg = a[2] ?? 0n;
  switch (cmd) {
    case F_DUPFD:
    case F_DUPFD_CLOEXEC: {
      const min = long(arg);
      if (min < 0 || min >= fdLimit(p)) return -EINVAL;
      const nfd = p.fds.install(f, cmd === F_DUPFD_CLOEXEC, fdLimit(p), min);
      return nfd < 0 ? -EMFILE : nfd;
    }
    case F_GETFD:
      return p.fds.isCloexec(fd) ? FD_CLOEXEC : 0;
    case F_SETFD:
      p.fds.setCloexec(fd, (Number(arg & 1n) & FD_CLOEXEC) !== 0);
      return 0;
    case F_GETFL:
      return f.flags;
    case F_SETFL: {
      const changeable = O_APPEND | O_NONBLOCK | O_DIRECT | O_NOATIME | FASYNC;
      f.flags = (f.flags & ~changeable) | (int(arg) & changeable);
      return 0;
    }
    case F_GETLK:
    case F_OFD_GETLK: {
      // No other process can hold a lock: report the range unlocked (struct flock.l_type).
      const b = new Uint8Array(2);
      new DataView(b.buffer).setInt16(0, F_UNLCK, true);
      p.aspace.write(ptr(arg), b);
      return 0;
    }
    case F_SETLK:
    case F_SETLKW:
    case F_OFD_SETLK:
    case F_OFD_SETLKW:
      p.aspace.checkAccess(ptr(arg), 32, 'read');
      return 0;
    case F_GETPIPE_SZ:
      return f.kind === 'stdin' || f.kind === 'stdout' || f.kind === 'stderr' ? 65536 : -EBADF;
    default:
      return -EINVAL;
  }
};

const ioctl: SyscallHandler = (p, _t, a) => {
  const fd = int(a[0]);
  const f = p.fds.get(fd);
  if (!f) return -EBADF;
  const req = uint(a[1]);
  switch (req) {
    case FIOCLEX:
      p.fds.setCloexec(fd, true);
      return 0;
    case FIONCLEX:
      p.fds.setCloexec(fd, false);
      return 0;
    case FIONBIO: {
      const on = p.aspace.readU32(ptr(a[2])) !== 0;
      f.flags = on ? f.flags | O_NONBLOCK : f.flags & ~O_NONBLOCK;
      return 0;
    }
    default:
      // Nothing is a terminal (TCGETS, TIOCGWINSZ, …): programs see pipes and files.
      return -ENOTTY;
  }
};

// ---- access ----

function accessAt(p: Process, dirfd: number, pathArg: bigint | undefined, mode: number, flags: number): number {
  if (mode & ~7) return -EINVAL;
  if (flags & ~(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) return -EINVAL;
  const pathname = readPath(p, pathArg);
  if (typeof pathname === 'number') return pathname;
  const r = resolve(p, dirfd, pathname);
  if (typeof r === 'number') return r;
  if (r.special !== null) return r.special === 'maps' && mode & W_OK ? -EACCES : 0;
  const host = allowedHostPath(p, r.path, !(flags & AT_SYMLINK_NOFOLLOW));
  if (typeof host === 'number') return host;
  if (mode & W_OK) return -EACCES;
  try {
    fs.accessSync(host, mode & (R_OK | 1));
  } catch (e) {
    return -errnoFromNode(e);
  }
  return 0;
}

const access: SyscallHandler = (p, _t, a) => accessAt(p, AT_FDCWD, a[0], int(a[1]), 0);
const faccessat: SyscallHandler = (p, _t, a) => accessAt(p, int(a[0]), a[1], int(a[2]), 0);
const faccessat2: SyscallHandler = (p, _t, a) => accessAt(p, int(a[0]), a[1], int(a[2]), int(a[3]));

// ---- misc ----

const fsync: SyscallHandler = (p, _t, a) => {
  const f = p.fds.get(int(a[0]));
  if (!f) return -EBADF;
  return f.kind === 'file' || f.kind === 'dir' ? 0 : -EINVAL;
};

const fadvise64: SyscallHandler = (p, _t, a) => {
  const f = p.fds.get(int(a[0]));
  if (!f) return -EBADF;
  if (f.kind === 'stdin' || f.kind === 'stdout' || f.kind === 'stderr') return -ESPIPE;
  return int(a[3]) >= 0 && int(a[3]) <= 5 ? 0 : -EINVAL;
};

/** Copies a readable file's bytes into a fresh private mapping (ignores page protection). */
export function copyFileIntoMapping(p: Process, f: OpenFile, vaddr: number, length: number, offset: number): number | null {
  if (f.kind === 'memory') {
    const c = f.contents ?? new Uint8Array(0);
    const data = c.subarray(Math.min(offset, c.length), Math.min(offset + length, c.length));
    p.aspace.writeUnchecked(vaddr, data);
    return data.length;
  }
  if (f.kind === 'zero') return 0;
  if (f.kind !== 'file') return null;
  return readHostIntoGuest(p, f.hostFd, vaddr, length, offset, false);
}

/** Errno for mmap of a file description that cannot be mapped, or 0. */
export function mmapFileCheck(f: OpenFile, shared: boolean, prot: number): number {
  if (f.flags & O_PATH) return -EBADF;
  if (f.kind === 'dir' || f.kind === 'null' || f.kind === 'stdin' || f.kind === 'stdout' || f.kind === 'stderr' || f.kind === 'random') {
    return -ENODEV;
  }
  const acc = accessMode(f);
  if (acc === O_WRONLY) return -EACCES;
  if (shared && prot & PROT_WRITE && acc !== O_RDWR) return -EACCES;
  return 0;
}

export const fileSyscalls: Record<string, SyscallHandler> = {
  read,
  write,
  pread64,
  pwrite64,
  readv,
  writev,
  preadv,
  open,
  openat,
  creat,
  close,
  stat,
  fstat,
  lstat,
  newfstatat,
  lseek,
  getdents64,
  readlink,
  readlinkat,
  getcwd,
  chdir,
  fchdir,
  dup,
  dup2,
  dup3,
  fcntl,
  ioctl,
  access,
  faccessat,
  faccessat2,
  fsync,
  fdatasync: fsync,
  fadvise64,
};
