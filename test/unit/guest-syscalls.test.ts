import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GuestDeadlockError } from '../../src/guest/errors.js';
import { M5OP_VADDR, MMAP_BASE, STACK_SIZE, USER_TOP } from '../../src/guest/layout.js';
import { implementedSyscalls } from '../../src/guest/syscalls.js';
import { SYSCALL_NAMES } from '../../src/guest/syscalls/names.js';
import { type TestGuest, checkTablesAgree, makeGuest } from './guest-support.js';

const E = {
  PERM: 1, NOENT: 2, SRCH: 3, BADF: 9, AGAIN: 11, NOMEM: 12, ACCES: 13, FAULT: 14, EXIST: 17, NOTDIR: 20,
  ISDIR: 21, INVAL: 22, NOTTY: 25, SPIPE: 29, RANGE: 34, NOSYS: 38, LOOP: 40, TIMEDOUT: 110,
};
const AT_FDCWD = -100;
const P = 4096;
const BAD_PTRS = [1, 0x1000, 2 ** 46 + 8, USER_TOP, -1];

let g: TestGuest;
beforeEach(() => {
  g = makeGuest();
});
afterEach(() => {
  g.process.close();
  fs.rmSync(g.dir, { recursive: true, force: true });
});

function str(s: string): number {
  const at = g.buf + 0x8000;
  g.writeString(at, s);
  return at;
}

function u64(addr: number): bigint {
  return g.process.aspace.readU64(addr);
}

function open(p: string, flags = 0): number {
  return g.sys('openat', AT_FDCWD, str(p), flags, 0);
}

describe('stdio', () => {
  it('write and writev go to the GuestIO, in order', () => {
    g.writeString(g.buf, 'hello ');
    g.writeString(g.buf + 100, 'world');
    expect(g.sys('write', 1, g.buf, 6)).toBe(6);
    // iovec[2] at buf+200
    const as = g.process.aspace;
    as.writeU64(g.buf + 200, BigInt(g.buf + 100));
    as.writeU64(g.buf + 208, 5n);
    as.writeU64(g.buf + 216, BigInt(g.buf));
    as.writeU64(g.buf + 224, 1n);
    expect(g.sys('writev', 1, g.buf + 200, 2)).toBe(6);
    expect(g.sys('write', 2, g.buf, 5)).toBe(5);
    expect(g.text(1)).toBe('hello worldh');
    expect(g.text(2)).toBe('hello');
  });

  it('a write inside one physical run hands the GuestIO a view of guest memory (no copy)', () => {
    const seen: Uint8Array[] = [];
    const h = makeGuest({ allowRead: [g.dir], io: { write: (_fd, b) => seen.push(b), read: () => new Uint8Array(0) } });
    h.writeString(h.buf + 10, 'zero-copy');
    expect(h.sys('write', 1, h.buf + 10, 9)).toBe(9);
    expect(seen[0]!.buffer).toBe(h.phys.bytes.buffer);
    expect(Buffer.from(seen[0]!).toString()).toBe('zero-copy');
  });

  it('a write crossing pages is copied whole', () => {
    const a = g.sys('mmap', 0, 3 * P, 3, 0x22, -1, 0);
    g.process.aspace.write(a + P - 2, Buffer.from('abcd'));
    expect(g.sys('write', 1, a + P - 2, 4)).toBe(4);
    expect(g.text(1)).toBe('abcd');
  });

  it('read takes bytes from stdin', () => {
    g.stdin.push(...Buffer.from('input!'));
    expect(g.sys('read', 0, g.buf, 3)).toBe(3);
    expect(g.readString(g.buf, 3)).toBe('inp');
    expect(g.sys('read', 0, g.buf, 100)).toBe(3);
    expect(g.sys('read', 0, g.buf, 100)).toBe(0);
  });

  it('bad descriptors and wrong directions give EBADF', () => {
    expect(g.sys('write', 7, g.buf, 1)).toBe(-E.BADF);
    expect(g.sys('write', 0, g.buf, 1)).toBe(-E.BADF);
    expect(g.sys('read', 1, g.buf, 1)).toBe(-E.BADF);
    expect(g.sys('write', -1, g.buf, 1)).toBe(-E.BADF);
  });

  it('stdio fstat reports pipes, ioctl TCGETS/TIOCGWINSZ report no terminal, lseek ESPIPE', () => {
    expect(g.sys('fstat', 1, g.buf)).toBe(0);
    expect(g.process.aspace.readU32(g.buf + 24) & 0o170000).toBe(0o010000);
    expect(Number(u64(g.buf + 56))).toBe(4096); // st_blksize
    expect(g.sys('ioctl', 1, 0x5401, g.buf)).toBe(-E.NOTTY);
    expect(g.sys('ioctl', 0, 0x5413, g.buf)).toBe(-E.NOTTY);
    expect(g.sys('ioctl', 9, 0x5401, g.buf)).toBe(-E.BADF);
    expect(g.sys('lseek', 1, 0, 0)).toBe(-E.SPIPE);
  });
});

describe('bad guest pointers', () => {
  it('become EFAULT, never an exception', () => {
    for (const bad of BAD_PTRS) {
      expect(g.sys('write', 1, bad, 10)).toBe(-E.FAULT);
      expect(g.sys('read', 0, bad, 10) === -E.FAULT || g.sys('read', 0, bad, 10) === 0).toBe(true);
      expect(g.sys('openat', AT_FDCWD, bad, 0, 0)).toBe(-E.FAULT);
      expect(g.sys('fstat', 1, bad)).toBe(-E.FAULT);
      expect(g.sys('uname', bad)).toBe(-E.FAULT);
      expect(g.sys('clock_gettime', 1, bad)).toBe(-E.FAULT);
      expect(g.sys('getrandom', bad, 16, 0)).toBe(-E.FAULT);
      expect(g.sys('arch_prctl', 0x1003, bad)).toBe(-E.FAULT);
      expect(g.sys('rt_sigaction', 2, bad, 0, 8)).toBe(-E.FAULT);
      expect(g.sys('writev', 1, bad, 2)).toBe(-E.FAULT);
      expect(g.sys('readlink', str('/proc/self/exe'), bad, 100)).toBe(-E.FAULT);
      expect(g.sys('futex', bad, 0, 0, 0, 0, 0)).toBe(bad % 4 === 0 ? -E.FAULT : -E.INVAL);
    }
    // the read-only text segment cannot be written through a syscall either
    expect(g.sys('clock_gettime', 1, 0x400000)).toBe(-E.FAULT);
    expect(g.text(1)).toBe('');
  });
});

describe('files under allowRead', () => {
  it('openat + read + lseek + pread64 + fstat + close on a real temp file', () => {
    const file = path.join(g.dir, 'hello.txt');
    const fd = open(file);
    expect(fd).toBe(3);
    expect(g.sys('read', fd, g.buf, 5)).toBe(5);
    expect(g.readString(g.buf, 5)).toBe('hello');
    expect(g.sys('read', fd, g.buf, 8)).toBe(8);
    expect(g.readString(g.buf, 8)).toBe(', guest\n');
    expect(g.sys('lseek', fd, 0, 1)).toBe(13); // SEEK_CUR
    expect(g.sys('lseek', fd, -5, 2)).toBe(20); // SEEK_END
    expect(g.sys('read', fd, g.buf, 100)).toBe(5);
    expect(g.readString(g.buf, 5)).toBe('line\n');
    expect(g.sys('read', fd, g.buf, 100)).toBe(0);
    expect(g.sys('lseek', fd, -100, 0)).toBe(-E.INVAL);
    expect(g.sys('pread64', fd, g.buf, 4, 7)).toBe(4);
    expect(g.readString(g.buf, 4)).toBe('gues');
    expect(g.sys('lseek', fd, 0, 1)).toBe(25); // pread leaves the offset alone

    expect(g.sys('fstat', fd, g.buf)).toBe(0);
    const st = fs.statSync(file, { bigint: true });
    expect(u64(g.buf + 8)).toBe(st.ino);
    expect(g.process.aspace.readU32(g.buf + 24)).toBe(Number(st.mode));
    expect(u64(g.buf + 48)).toBe(st.size);
    expect(u64(g.buf + 88)).toBe(st.mtimeNs / 1_000_000_000n);
    expect(u64(g.buf + 96)).toBe(st.mtimeNs % 1_000_000_000n);
    expect(g.sys('fcntl', fd, 3)).toBe(0o100000); // F_GETFL: O_RDONLY | O_LARGEFILE
    expect(g.sys('close', fd)).toBe(0);
    expect(g.sys('close', fd)).toBe(-E.BADF);
  });

  it('readv scatters file data over several buffers', () => {
    const fd = open('hello.txt');
    const as = g.process.aspace;
    as.writeU64(g.buf + 200, BigInt(g.buf));
    as.writeU64(g.buf + 208, 7n);
    as.writeU64(g.buf + 216, BigInt(g.buf + 100));
    as.writeU64(g.buf + 224, 5n);
    expect(g.sys('readv', fd, g.buf + 200, 2)).toBe(12);
    expect(g.readString(g.buf, 7) + g.readString(g.buf + 100, 5)).toBe('hello, guest');
    expect(g.sys('readv', fd, g.buf + 200, 1025)).toBe(-E.INVAL);
  });

  it('reads straight into guest pages across page boundaries', () => {
    const fd = open(path.join(g.dir, 'sub/inner.bin'));
    const a = g.sys('mmap', 0, 4 * P, 3, 0x22, -1, 0);
    expect(g.sys('read', fd, a + 100, 10000)).toBe(10000);
    const got = g.process.aspace.read(a + 100, 10000);
    expect(got.every((b, i) => b === (i & 0xff))).toBe(true);
  });

  it('relative paths resolve against the guest cwd and dirfd', () => {
    const fd = open('hello.txt');
    expect(fd).toBeGreaterThanOrEqual(3);
    const dirfd = open('sub', 0o200000);
    expect(dirfd).toBeGreaterThan(fd);
    expect(g.sys('openat', dirfd, str('inner.bin'), 0)).toBeGreaterThan(dirfd);
    expect(g.sys('openat', fd, str('inner.bin'), 0)).toBe(-E.NOTDIR);
    expect(g.sys('read', dirfd, g.buf, 10)).toBe(-E.ISDIR);
  });

  it('refuses writes, paths outside allowRead and symlink escapes; missing files are ENOENT', () => {
    expect(open('/etc/passwd')).toBe(-E.ACCES);
    expect(open(path.join(g.dir, 'hello.txt'), 1)).toBe(-E.ACCES); // O_WRONLY
    expect(open(path.join(g.dir, 'hello.txt'), 2)).toBe(-E.ACCES); // O_RDWR
    expect(open(path.join(g.dir, 'new.txt'), 0o100)).toBe(-E.ACCES); // O_CREAT
    expect(open(path.join(g.dir, 'missing.txt'))).toBe(-E.NOENT);
    expect(open(path.join(g.dir, '../outside'))).toBe(-E.ACCES);
    expect(open(path.join(g.dir, 'escape'))).toBe(-E.ACCES);
    expect(open(path.join(g.dir, 'link'))).toBeGreaterThanOrEqual(3);
    expect(open(path.join(g.dir, 'link'), 0o400000)).toBe(-E.LOOP); // O_NOFOLLOW
    expect(g.sys('open', str('/etc/hostname'), 0)).toBe(-E.ACCES);
    expect(g.sys('access', str(path.join(g.dir, 'hello.txt')), 4)).toBe(0);
    expect(g.sys('access', str(path.join(g.dir, 'hello.txt')), 2)).toBe(-E.ACCES);
    expect(g.sys('access', str(path.join(g.dir, 'nope')), 0)).toBe(-E.NOENT);
    expect(g.sys('faccessat2', AT_FDCWD, str('hello.txt'), 0, 0)).toBe(0);
    expect(g.sys('faccessat', AT_FDCWD, str('/etc/passwd'), 0)).toBe(-E.ACCES);
  });

  it('stat, lstat and newfstatat (AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW)', () => {
    const link = path.join(g.dir, 'link');
    expect(g.sys('stat', str(link), g.buf)).toBe(0);
    expect(u64(g.buf + 48)).toBe(25n);
    expect(g.sys('lstat', str(link), g.buf)).toBe(0);
    expect(g.process.aspace.readU32(g.buf + 24) & 0o170000).toBe(0o120000);
    expect(g.sys('newfstatat', AT_FDCWD, str('link'), g.buf, 0x100)).toBe(0);
    expect(g.process.aspace.readU32(g.buf + 24) & 0o170000).toBe(0o120000);
    const fd = open('hello.txt');
    expect(g.sys('newfstatat', fd, str(''), g.buf, 0x1000)).toBe(0);
    expect(u64(g.buf + 48)).toBe(25n);
    expect(g.sys('newfstatat', fd, str(''), g.buf, 0)).toBe(-E.NOENT);
    expect(g.sys('stat', str('/etc/passwd'), g.buf)).toBe(-E.ACCES);
    expect(g.sys('newfstatat', AT_FDCWD, str('x'), g.buf, 0x8000000)).toBe(-E.INVAL);
  });

  it('getdents64 lists a directory', () => {
    const fd = open(g.dir, 0o200000);
    const n = g.sys('getdents64', fd, g.buf, 4096);
    expect(n).toBeGreaterThan(0);
    const names: string[] = [];
    const as = g.process.aspace;
    for (let at = 0; at < n; ) {
      const reclen = as.readU16(g.buf + at + 16);
      names.push(as.readCString(g.buf + at + 19, 256)!);
      at += reclen;
    }
    expect(names.sort()).toEqual(['.', '..', 'escape', 'hello.txt', 'link', 'sub']);
    expect(g.sys('getdents64', fd, g.buf, 4096)).toBe(0);
    expect(g.sys('getdents64', 1, g.buf, 4096)).toBe(-E.NOTDIR);
  });

  it('/dev/null, /dev/zero and /proc/self/maps are emulated', () => {
    const nul = open('/dev/null', 2);
    expect(g.sys('write', nul, g.buf, 100)).toBe(100);
    expect(g.sys('read', nul, g.buf, 100)).toBe(0);
    const zero = open('/dev/zero');
    g.process.aspace.write(g.buf, Uint8Array.of(1, 2, 3));
    expect(g.sys('read', zero, g.buf, 3)).toBe(3);
    expect([...g.process.aspace.read(g.buf, 3)]).toEqual([0, 0, 0]);
    const maps = open('/proc/self/maps');
    const n = g.sys('read', maps, g.buf, 4096);
    const text = g.readString(g.buf, n);
    expect(text).toMatch(/^00400000-00401000 r-xp .*prog$/m);
    expect(text).toMatch(/^7fffff7ff000-7ffffffff000 rw-p .*\[stack\]$/m);
    expect(text).toMatch(/^ffff0000-100000000 rw-p .*\[m5op\]$/m);
  });

  it('mmap of an allowed file copies its bytes into a private mapping', () => {
    const fd = open('sub/inner.bin');
    const a = g.sys('mmap', 0, 3 * P, 1, 2, fd, P); // PROT_READ, MAP_PRIVATE, offset 4096
    expect(a).toBeGreaterThan(0);
    const got = g.process.aspace.read(a, 3 * P);
    for (let i = 0; i < 10000 - P; i++) if (got[i] !== ((i + P) & 0xff)) throw new Error(`byte ${i}`);
    expect(got.subarray(10000 - P).every((b) => b === 0)).toBe(true);
    expect(g.process.aspace.findVma(a)).toMatchObject({ kind: 'file', prot: 1 });
    expect(g.sys('mmap', 0, P, 3, 1, fd, 0)).toBe(-E.ACCES); // MAP_SHARED + PROT_WRITE on a read-only file
    expect(g.sys('mmap', 0, P, 1, 2, 1, 0)).toBe(-19); // ENODEV: stdout
    expect(g.sys('mmap', 0, P, 1, 2, 55, 0)).toBe(-E.BADF);
  });
});

describe('descriptors', () => {
  it('dup, dup2, dup3 and fcntl share the open file and manage FD_CLOEXEC', () => {
    const d = g.sys('dup', 1);
    expect(d).toBe(3);
    g.writeString(g.buf, 'x');
    expect(g.sys('write', d, g.buf, 1)).toBe(1);
    expect(g.sys('close', 1)).toBe(0);
    expect(g.sys('write', 1, g.buf, 1)).toBe(-E.BADF);
    expect(g.sys('dup2', 3, 1)).toBe(1);
    expect(g.sys('write', 1, g.buf, 1)).toBe(1);
    expect(g.text(1)).toBe('xx');
    expect(g.sys('dup3', 1, 1, 0)).toBe(-E.INVAL);
    expect(g.sys('dup3', 1, 10, 0o2000000)).toBe(10);
    expect(g.sys('fcntl', 10, 1)).toBe(1); // F_GETFD: FD_CLOEXEC
    expect(g.sys('fcntl', 10, 2, 0)).toBe(0);
    expect(g.sys('fcntl', 10, 1)).toBe(0);
    expect(g.sys('fcntl', 1, 0, 20)).toBe(20); // F_DUPFD
    expect(g.sys('fcntl', 1, 1030, 20)).toBe(21); // F_DUPFD_CLOEXEC
    expect(g.sys('fcntl', 21, 1)).toBe(1);
    expect(g.sys('fcntl', 1, 3)).toBe(0o100001); // O_WRONLY | O_LARGEFILE
    expect(g.sys('fcntl', 1, 4, 0o4000)).toBe(0); // F_SETFL O_NONBLOCK
    expect(g.sys('fcntl', 3, 3)).toBe(0o104001); // shared description
    expect(g.sys('fcntl', 99, 1)).toBe(-E.BADF);
    expect(g.sys('dup2', 99, 5)).toBe(-E.BADF);

    // dup'd file descriptors share the offset
    const fd = open('hello.txt');
    const fd2 = g.sys('dup', fd);
    expect(g.sys('read', fd, g.buf, 6)).toBe(6);
    expect(g.sys('lseek', fd2, 0, 1)).toBe(6);
  });

  it('readlink of /proc/self/exe gives the executable path', () => {
    const exe = path.join(fs.realpathSync(g.dir), 'prog');
    expect(g.sys('readlink', str('/proc/self/exe'), g.buf, 4096)).toBe(Buffer.byteLength(exe));
    expect(g.readString(g.buf, Buffer.byteLength(exe))).toBe(exe);
    expect(g.sys('readlinkat', AT_FDCWD, str('/proc/1000/exe'), g.buf, 5)).toBe(5);
    expect(g.readString(g.buf, 5)).toBe(exe.slice(0, 5));
    expect(g.sys('readlink', str('/proc/self/exe'), g.buf, 0)).toBe(-E.INVAL);
    expect(g.sys('readlink', str(path.join(g.dir, 'link')), g.buf, 100)).toBe(9);
    expect(g.readString(g.buf, 9)).toBe('hello.txt');
    expect(g.sys('readlink', str(path.join(g.dir, 'hello.txt')), g.buf, 100)).toBe(-E.INVAL);
  });

  it('getcwd and chdir', () => {
    const cwd = g.process.cwd;
    expect(g.sys('getcwd', g.buf, 4096)).toBe(Buffer.byteLength(cwd) + 1);
    expect(g.readString(g.buf, Buffer.byteLength(cwd))).toBe(cwd);
    expect(g.sys('getcwd', g.buf, 3)).toBe(-E.RANGE);
    expect(g.sys('chdir', str('sub'))).toBe(0);
    expect(open('inner.bin')).toBeGreaterThanOrEqual(3);
    expect(g.sys('chdir', str('/etc'))).toBe(-E.ACCES);
  });
});

describe('memory syscalls', () => {
  it('brk grows, shrinks and refuses invalid requests', () => {
    const start = g.sys('brk', 0);
    expect(start).toBe(0x404000); // page after the bss end 0x403000
    expect(g.sys('brk', start + 0x10000)).toBe(start + 0x10000);
    g.process.aspace.writeU32(start + 0xfffc, 7);
    expect(g.sys('brk', start - 0x1000)).toBe(start + 0x10000); // below the start: current break
    expect(g.sys('brk', start + 0x100)).toBe(start + 0x100);
    expect(g.sys('clock_gettime', 1, start + 0x2000)).toBe(-E.FAULT);
  });

  it('mmap places anonymous memory top-down and validates its arguments', () => {
    const a = g.sys('mmap', 0, 5000, 3, 0x22, -1, 0);
    const b = g.sys('mmap', 0, P, 3, 0x22, -1, 0);
    expect(b).toBe(a - P);
    expect(a + 2 * P).toBeLessThanOrEqual(MMAP_BASE);
    expect(g.sys('mmap', 0, 0, 3, 0x22, -1, 0)).toBe(-E.INVAL);
    expect(g.sys('mmap', 0, P, 3, 0x20, -1, 0)).toBe(-E.INVAL); // neither shared nor private
    expect(g.sys('mmap', 0, P, 3, 0x22, -1, 123)).toBe(-E.INVAL);
    expect(g.sys('mmap', 0x10000123, P, 3, 0x32, -1, 0)).toBe(-E.INVAL); // MAP_FIXED unaligned
    expect(g.sys('mmap', 0x1000, P, 3, 0x32, -1, 0)).toBe(-E.PERM); // below mmap_min_addr
    expect(g.sys('mmap', 0, 2 ** 47, 3, 0x22, -1, 0)).toBe(-E.NOMEM);
    expect(g.sys('mmap', 0, 1 << 30, 3, 0x22, -1, 0)).toBe(-E.NOMEM); // more than guest RAM
    expect(g.warnings.some((w) => /raise --mem-size/.test(w))).toBe(true);
    // a free hint is honoured
    expect(g.sys('mmap', 0x50000000, P, 3, 0x22, -1, 0)).toBe(0x50000000);
  });

  it('MAP_FIXED replaces, MAP_FIXED_NOREPLACE refuses, munmap of partial ranges', () => {
    const a = g.sys('mmap', 0x20000000, 8 * P, 3, 0x22, -1, 0);
    expect(a).toBe(0x20000000);
    g.process.aspace.writeU32(a + 2 * P, 0x1234);
    expect(g.sys('mmap', a + 2 * P, P, 1, 0x32, -1, 0)).toBe(a + 2 * P);
    expect(g.process.aspace.readU32(a + 2 * P)).toBe(0);
    expect(g.sys('mmap', a, P, 3, 0x100022, -1, 0)).toBe(-E.EXIST);
    expect(g.sys('mmap', a + 8 * P, P, 3, 0x100022, -1, 0)).toBe(a + 8 * P);
    expect(g.sys('munmap', a + P, 3 * P)).toBe(0);
    expect(g.sys('munmap', a + 1, P)).toBe(-E.INVAL);
    expect(g.sys('munmap', a, 0)).toBe(-E.INVAL);
    const vmas = g.process.aspace.vmas.filter((v) => v.start >= a && v.end <= a + 9 * P);
    expect(vmas.map((v) => [v.start - a, v.end - a])).toEqual([[0, P], [4 * P, 9 * P]]);
    checkTablesAgree(g.process.aspace);
  });

  it('mprotect changes permissions and needs a fully mapped range', () => {
    const a = g.sys('mmap', 0x20000000, 4 * P, 3, 0x22, -1, 0);
    expect(g.sys('mprotect', a + P, P, 1)).toBe(0);
    expect(g.sys('clock_gettime', 1, a + P)).toBe(-E.FAULT);
    expect(g.sys('clock_gettime', 1, a)).toBe(0);
    expect(g.sys('mprotect', a, 8 * P, 1)).toBe(-E.NOMEM);
    expect(g.sys('mprotect', a + 1, P, 1)).toBe(-E.INVAL);
    expect(g.sys('mprotect', a, P, 0x100)).toBe(-E.INVAL);
    checkTablesAgree(g.process.aspace);
  });

  it('madvise(MADV_DONTNEED) zeroes anonymous pages', () => {
    const a = g.sys('mmap', 0, 2 * P, 3, 0x22, -1, 0);
    g.process.aspace.writeU32(a + P + 8, 99);
    expect(g.sys('madvise', a, 2 * P, 4)).toBe(0);
    expect(g.process.aspace.readU32(a + P + 8)).toBe(0);
    expect(g.sys('madvise', 0x30000000, P, 4)).toBe(-E.NOMEM);
    expect(g.sys('madvise', a, P, 999)).toBe(-E.INVAL);
  });

  it('mremap grows by moving the pages and keeps their contents', () => {
    const a = g.sys('mmap', 0, 2 * P, 3, 0x22, -1, 0);
    g.sys('mmap', 0, P, 3, 0x22, -1, 0); // blocks growth below? (top-down: placed below a)
    g.process.aspace.writeU32(a + 4, 0xabcdef);
    const b = g.sys('mremap', a, 2 * P, 16 * P, 1, 0);
    expect(b).toBeGreaterThan(0);
    expect(g.process.aspace.readU32(b + 4)).toBe(0xabcdef);
    expect(g.sys('mremap', b, 16 * P, 4 * P, 0, 0)).toBe(b);
    expect(g.sys('mremap', 0x30000000, P, 2 * P, 1, 0)).toBe(-E.FAULT);
    expect(g.sys('mremap', b, 4 * P, 0, 1, 0)).toBe(-E.INVAL);
    checkTablesAgree(g.process.aspace);
  });

  it('the m5op window cannot be unmapped, remapped or replaced', () => {
    expect(g.sys('munmap', M5OP_VADDR, P)).toBe(-E.INVAL);
    expect(g.sys('mprotect', M5OP_VADDR, P, 1)).toBe(-E.INVAL);
    expect(g.sys('mmap', M5OP_VADDR, P, 3, 0x32, -1, 0)).toBe(-E.INVAL);
    expect(g.sys('write', 1, M5OP_VADDR, 8)).toBe(-E.FAULT);
  });
});

describe('process, identity and system information', () => {
  it('arch_prctl sets and reads FS/GS bases through the thread', () => {
    expect(g.sys('arch_prctl', 0x1002, 0x7ffff7ff0000)).toBe(0);
    expect(g.thread.fsBase).toBe(0x7ffff7ff0000n);
    expect(g.sys('arch_prctl', 0x1003, g.buf)).toBe(0);
    expect(u64(g.buf)).toBe(0x7ffff7ff0000n);
    expect(g.sys('arch_prctl', 0x1001, 0x1234)).toBe(0);
    expect(g.sys('arch_prctl', 0x1004, g.buf)).toBe(0);
    expect(u64(g.buf)).toBe(0x1234n);
    expect(g.sys('arch_prctl', 0x1002, 0xffff800000000000n)).toBe(-E.PERM);
    expect(g.sys('arch_prctl', 0x9999, 0)).toBe(-E.INVAL);
  });

  it('ids, set_tid_address and set_robust_list', () => {
    expect(g.sys('getpid')).toBe(1000);
    expect(g.sys('gettid')).toBe(1000);
    expect(g.sys('getppid')).toBe(999);
    expect(g.sys('getuid')).toBe(1234);
    expect(g.sys('geteuid')).toBe(1234);
    expect(g.sys('getgid')).toBe(5678);
    expect(g.sys('getegid')).toBe(5678);
    expect(g.sys('set_tid_address', g.buf)).toBe(1000);
    expect(g.sys('set_robust_list', g.buf, 24)).toBe(0);
    expect(g.sys('set_robust_list', g.buf, 23)).toBe(-E.INVAL);
  });

  it('uname reports Linux x86_64', () => {
    expect(g.sys('uname', g.buf)).toBe(0);
    const field = (i: number) => g.process.aspace.readCString(g.buf + 65 * i, 65);
    expect([0, 1, 2, 4, 5].map(field)).toEqual(['Linux', 'switchsim', '6.1.0-switchsim', 'x86_64', '(none)']);
    expect(field(3)).toMatch(/^#1 SMP/);
  });

  it('sysinfo, sched_getaffinity, getrusage, prlimit64', () => {
    expect(g.sys('sysinfo', g.buf)).toBe(0);
    expect(u64(g.buf + 32)).toBe(BigInt(32 * 1024 * 1024)); // totalram
    expect(g.process.aspace.readU32(g.buf + 104)).toBe(1); // mem_unit
    expect(g.sys('sched_getaffinity', 0, 128, g.buf)).toBe(8);
    expect(u64(g.buf)).toBe(1n);
    expect(g.sys('sched_getaffinity', 0, 4, g.buf)).toBe(-E.INVAL);
    expect(g.sys('sched_getaffinity', 77, 8, g.buf)).toBe(-E.SRCH);
    expect(g.sys('getrusage', 0, g.buf)).toBe(0);
    expect(u64(g.buf)).toBe(1n); // utime seconds from cpuTimeNs 1.25 s
    expect(u64(g.buf + 8)).toBe(250000n);
    expect(g.sys('getrusage', 5, g.buf)).toBe(-E.INVAL);
    expect(g.sys('prlimit64', 0, 3, 0, g.buf)).toBe(0); // RLIMIT_STACK
    expect(u64(g.buf)).toBe(BigInt(STACK_SIZE));
    expect(u64(g.buf + 8)).toBe(0xffffffffffffffffn);
    g.process.aspace.writeU64(g.buf, 1000n);
    g.process.aspace.writeU64(g.buf + 8, 2000n);
    expect(g.sys('setrlimit', 4, g.buf)).toBe(0);
    expect(g.sys('getrlimit', 4, g.buf + 16)).toBe(0);
    expect([u64(g.buf + 16), u64(g.buf + 24)]).toEqual([1000n, 2000n]);
    g.process.aspace.writeU64(g.buf, 3000n);
    expect(g.sys('setrlimit', 4, g.buf)).toBe(-E.INVAL); // soft above hard
    expect(g.sys('prlimit64', 0, 99, 0, g.buf)).toBe(-E.INVAL);
  });

  it('exit_group ends the process with its status', () => {
    const r = g.process.syscall(g.thread, 231, [300n, 0n, 0n, 0n, 0n, 0n]);
    expect(r).toEqual({ kind: 'exit', status: 300 & 0xff });
    expect(g.process.exitStatus).toBe(44);
  });

  it('abort-style tgkill(SIGABRT) ends the process like the default action', () => {
    expect(g.sys('tgkill', 1000, 1000, 0)).toBe(0);
    expect(g.sys('tgkill', 1000, 5, 6)).toBe(-E.SRCH);
    const r = g.process.syscall(g.thread, 234, [1000n, 1000n, 6n, 0n, 0n, 0n]);
    expect(r).toEqual({ kind: 'exit', status: 134 });
    expect(g.process.exitSignal).toBe(6);
  });
});

describe('time', () => {
  it('clock_gettime and friends come from the thread', () => {
    g.thread.timeNs = 5_123_456_789n;
    g.thread.cpuNs = 2_000_000_001n;
    expect(g.sys('clock_gettime', 1, g.buf)).toBe(0); // MONOTONIC
    expect([u64(g.buf), u64(g.buf + 8)]).toEqual([5n, 123_456_789n]);
    expect(g.sys('clock_gettime', 0, g.buf)).toBe(0); // REALTIME
    expect([u64(g.buf), u64(g.buf + 8)]).toEqual([1_704_067_205n, 123_456_789n]);
    expect(g.sys('clock_gettime', 2, g.buf)).toBe(0); // PROCESS_CPUTIME_ID
    expect([u64(g.buf), u64(g.buf + 8)]).toEqual([2n, 1n]);
    expect(g.sys('clock_gettime', 77, g.buf)).toBe(-E.INVAL);
    expect(g.sys('clock_getres', 1, g.buf)).toBe(0);
    expect([u64(g.buf), u64(g.buf + 8)]).toEqual([0n, 1n]);
    expect(g.sys('gettimeofday', g.buf, 0)).toBe(0);
    expect([u64(g.buf), u64(g.buf + 8)]).toEqual([1_704_067_205n, 123_456n]);
    expect(g.sys('time', 0)).toBe(1_704_067_205);
    expect(g.sys('times', g.buf)).toBe(512);
    expect(u64(g.buf)).toBe(200n);
  });

  it('nanosleep returns at once, validates, and warns once', () => {
    g.process.aspace.writeU64(g.buf, 1n);
    g.process.aspace.writeU64(g.buf + 8, 5n);
    expect(g.sys('nanosleep', g.buf, 0)).toBe(0);
    expect(g.sys('clock_nanosleep', 1, 0, g.buf, 0)).toBe(0);
    expect(g.warnings.filter((w) => /sleep/.test(w))).toHaveLength(1);
    g.process.aspace.writeU64(g.buf + 8, 1_000_000_000n);
    expect(g.sys('nanosleep', g.buf, 0)).toBe(-E.INVAL);
    expect(g.sys('clock_nanosleep', 3, 0, g.buf, 0)).toBe(-E.INVAL);
  });
});

describe('getrandom', () => {
  it('is reproducible for a seed and differs between seeds', () => {
    const draw = (guest: TestGuest) => {
      expect(guest.sys('getrandom', guest.buf, 64, 0)).toBe(64);
      return [...guest.process.aspace.read(guest.buf, 64)];
    };
    const other = makeGuest({ allowRead: [g.dir] });
    const third = makeGuest({ allowRead: [g.dir], seed: 43n });
    const a = draw(g);
    expect(draw(other)).toEqual(a);
    expect(draw(third)).not.toEqual(a);
    expect(draw(g)).not.toEqual(a); // the stream moves on
    expect(g.sys('getrandom', g.buf, 8, 0x80)).toBe(-E.INVAL);
  });
});

describe('signals (recorded, not delivered)', () => {
  it('rt_sigaction stores handlers and returns the old one', () => {
    const as = g.process.aspace;
    as.writeU64(g.buf, 0x401000n); // handler
    as.writeU64(g.buf + 8, 0x04000000n); // SA_RESTORER
    as.writeU64(g.buf + 16, 0x401100n);
    as.writeU64(g.buf + 24, 0n);
    expect(g.sys('rt_sigaction', 2, g.buf, g.buf + 64, 8)).toBe(0);
    expect(u64(g.buf + 64)).toBe(0n); // SIG_DFL before
    expect(g.sys('rt_sigaction', 2, 0, g.buf + 64, 8)).toBe(0);
    expect(u64(g.buf + 64)).toBe(0x401000n);
    expect(u64(g.buf + 80)).toBe(0x401100n);
    expect(g.sys('rt_sigaction', 9, g.buf, 0, 8)).toBe(-E.INVAL);
    expect(g.sys('rt_sigaction', 2, g.buf, 0, 4)).toBe(-E.INVAL);
    expect(g.sys('rt_sigaction', 65, 0, 0, 8)).toBe(-E.INVAL);
  });

  it('rt_sigprocmask tracks the mask (never SIGKILL/SIGSTOP)', () => {
    g.process.aspace.writeU64(g.buf, (1n << 1n) | (1n << 8n));
    expect(g.sys('rt_sigprocmask', 0, g.buf, g.buf + 8, 8)).toBe(0);
    expect(u64(g.buf + 8)).toBe(0n);
    expect(g.sys('rt_sigprocmask', 0, 0, g.buf + 8, 8)).toBe(0);
    expect(u64(g.buf + 8)).toBe(1n << 1n);
    expect(g.sys('rt_sigprocmask', 7, g.buf, 0, 8)).toBe(-E.INVAL);
  });

  it('sigaltstack records the alternate stack', () => {
    expect(g.sys('sigaltstack', 0, g.buf)).toBe(0);
    expect(g.process.aspace.readU32(g.buf + 8)).toBe(2); // SS_DISABLE
    g.process.aspace.writeU64(g.buf, 0x7000000n);
    g.process.aspace.writeU32(g.buf + 8, 0);
    g.process.aspace.writeU64(g.buf + 16, 65536n);
    expect(g.sys('sigaltstack', g.buf, 0)).toBe(0);
    expect(g.sys('sigaltstack', 0, g.buf + 32)).toBe(0);
    expect(u64(g.buf + 32)).toBe(0x7000000n);
    expect(u64(g.buf + 48)).toBe(65536n);
    g.process.aspace.writeU64(g.buf + 16, 100n);
    expect(g.sys('sigaltstack', g.buf, 0)).toBe(-E.NOMEM);
  });
});

describe('futex with one thread', () => {
  it('returns EAGAIN/ETIMEDOUT or reports the deadlock', () => {
    const as = g.process.aspace;
    as.writeU32(g.buf, 5);
    expect(g.sys('futex', g.buf, 128, 4, 0, 0, 0)).toBe(-E.AGAIN); // FUTEX_WAIT_PRIVATE, value differs
    as.writeU64(g.buf + 16, 0n);
    as.writeU64(g.buf + 24, 1000n);
    expect(g.sys('futex', g.buf, 0, 5, g.buf + 16, 0, 0)).toBe(-E.TIMEDOUT);
    expect(g.sys('futex', g.buf, 1, 1, 0, 0, 0)).toBe(0); // FUTEX_WAKE
    expect(g.sys('futex', g.buf + 1, 0, 5, 0, 0, 0)).toBe(-E.INVAL);
    expect(() => g.sys('futex', g.buf, 0, 5, 0, 0, 0)).toThrow(GuestDeadlockError);
    expect(() => g.sys('futex', g.buf, 0, 5, 0, 0, 0)).toThrow(/block forever/);
  });
});

describe('unknown syscalls', () => {
  it('return ENOSYS with exactly one warning per number, naming it where known', () => {
    for (let i = 0; i < 3; i++) expect(g.sys(500)).toBe(-E.NOSYS);
    for (let i = 0; i < 3; i++) expect(g.sys(57)).toBe(-E.NOSYS); // fork
    expect(g.warnings).toEqual([
      'unknown syscall 500 (no name); returning -ENOSYS',
      'unsupported syscall 57 (fork); returning -ENOSYS',
    ]);
  });

  it('rseq is ENOSYS without a warning', () => {
    expect(g.sys('rseq', 0, 32, 0, 0)).toBe(-E.NOSYS);
    expect(g.warnings).toEqual([]);
  });

  it('the name table covers the x86-64 numbers and every handler has a name', () => {
    expect(SYSCALL_NAMES.get(0)).toBe('read');
    expect(SYSCALL_NAMES.get(60)).toBe('exit');
    expect(SYSCALL_NAMES.get(231)).toBe('exit_group');
    expect(SYSCALL_NAMES.get(334)).toBe('rseq');
    expect(SYSCALL_NAMES.get(435)).toBe('clone3');
    expect(SYSCALL_NAMES.get(439)).toBe('faccessat2');
    expect(SYSCALL_NAMES.get(450)).toBe('set_mempolicy_home_node');
    for (const nr of implementedSyscalls()) expect(SYSCALL_NAMES.has(nr)).toBe(true);
  });
});
