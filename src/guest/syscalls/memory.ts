/**
 * Memory syscalls over the AddressSpace. Every mapping is populated when created; file
 * mappings are private copies of a read-only file. The m5op window cannot be changed.
 */
import { PAGE_SIZE } from '../physmem.js';
import { MMAP_MIN_ADDR, USER_TOP, isPageAligned, pageDown, pageUp } from '../layout.js';
import { PROT_MASK } from '../pageTables.js';
import {
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_PRIVATE,
  MAP_SHARED,
  MAP_SHARED_VALIDATE,
  MAP_TYPE,
  MREMAP_DONTUNMAP,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_GROWSDOWN,
  PROT_GROWSUP,
} from './abi.js';
import { EBADF, EEXIST, EFAULT, EINVAL, ENOMEM, EPERM } from './errno.js';
import { copyFileIntoMapping, mmapFileCheck } from './fs.js';
import { type SyscallHandler, int, long, ptr, size } from './util.js';

const brk: SyscallHandler = (p, _t, a) => {
  const req = a[0] ?? 0n;
  return p.aspace.brk(req < BigInt(USER_TOP) ? Number(req) : -1);
};

const mmap: SyscallHandler = (p, _t, a) => {
  const as = p.aspace;
  const rawLen = size(a[1]);
  const prot = int(a[2]) & PROT_MASK;
  const flags = int(a[3]);
  const fd = int(a[4]);
  const offset = long(a[5]);
  if (rawLen === 0) return -EINVAL;
  const len = pageUp(rawLen);
  if (len > USER_TOP) return -ENOMEM;
  if (offset < 0 || !isPageAligned(offset)) return -EINVAL;
  const type = flags & MAP_TYPE;
  if (type !== MAP_PRIVATE && type !== MAP_SHARED && type !== MAP_SHARED_VALIDATE) return -EINVAL;
  const anonymous = (flags & MAP_ANONYMOUS) !== 0;
  const file = anonymous ? undefined : p.fds.get(fd);
  if (!anonymous) {
    if (!file) return -EBADF;
    const err = mmapFileCheck(file, type !== MAP_PRIVATE, prot);
    if (err !== 0) return err;
  }
  let start: number;
  if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
    const raw = a[0] ?? 0n;
    if (raw % BigInt(PAGE_SIZE) !== 0n) return -EINVAL;
    if (raw >= BigInt(USER_TOP) || Number(raw) + len > USER_TOP) return -ENOMEM;
    start = Number(raw);
    if (start < MMAP_MIN_ADDR) return -EPERM;
    if (as.touchesIo(start, len)) return -EINVAL;
    // MAP_FIXED_NOREPLACE wins over MAP_FIXED, as in Linux.
    if (flags & MAP_FIXED_NOREPLACE && !as.isFree(start, len)) return -EEXIST;
  } else {
    const hint = pageDown(ptr(a[0]));
    start = hint >= MMAP_MIN_ADDR && hint + len <= USER_TOP && as.isFree(hint, len) ? hint : as.findFree(len);
    if (start < 0) return -ENOMEM;
  }
  const kind = file && file.kind !== 'zero' ? 'file' : 'mmap';
  as.mapFixed(start, len, prot, kind, kind === 'file' ? file!.path : '');
  if (kind === 'file') copyFileIntoMapping(p, file!, start, Math.min(rawLen, len), offset);
  return start;
};

const munmap: SyscallHandler = (p, _t, a) => {
  const start = ptr(a[0]);
  const len = size(a[1]);
  if (!isPageAligned(start) || len === 0) return -EINVAL;
  if (start + pageUp(len) > USER_TOP) return -EINVAL;
  if (p.aspace.touchesIo(start, len)) return -EINVAL;
  p.aspace.unmap(start, len);
  return 0;
};

const mprotect: SyscallHandler = (p, _t, a) => {
  const start = ptr(a[0]);
  const len = size(a[1]);
  const prot = int(a[2]);
  if (!isPageAligned(start)) return -EINVAL;
  if (prot & ~(PROT_MASK | PROT_GROWSDOWN | PROT_GROWSUP)) return -EINVAL;
  if (len === 0) return 0;
  const end = start + pageUp(len);
  if (end > USER_TOP) return -ENOMEM;
  if (p.aspace.touchesIo(start, len)) return -EINVAL;
  return p.aspace.protect(start, len, prot & PROT_MASK) ? 0 : -ENOMEM;
};

const madvise: SyscallHandler = (p, _t, a) => {
  const start = ptr(a[0]);
  const len = size(a[1]);
  const advice = int(a[2]);
  if (!isPageAligned(start)) return -EINVAL;
  if (!((advice >= 0 && advice <= 26) || advice === 100 || advice === 101)) return -EINVAL;
  if (len === 0) return 0;
  const end = start + pageUp(len);
  if (end > USER_TOP) return -EINVAL;
  if (!p.aspace.isMapped(start, end - start)) return -ENOMEM;
  if (advice === MADV_DONTNEED) p.aspace.discard(start, end - start);
  return 0;
};

const mremap: SyscallHandler = (p, _t, a) => {
  const old = ptr(a[0]);
  const oldLen = size(a[1]);
  const newLen = size(a[2]);
  const flags = int(a[3]);
  if (flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP)) return -EINVAL;
  if (flags & MREMAP_FIXED && !(flags & MREMAP_MAYMOVE)) return -EINVAL;
  if (flags & MREMAP_DONTUNMAP) return -EINVAL; // not supported (needs a second mapping of the same pages)
  if (!isPageAligned(old)) return -EINVAL;
  if (newLen === 0 || pageUp(newLen) > USER_TOP) return -EINVAL;
  if (oldLen === 0) return -EINVAL; // only duplicates shared mappings in Linux
  if (old + pageUp(oldLen) > USER_TOP) return -EFAULT;
  if (p.aspace.touchesIo(old, oldLen)) return -EINVAL;
  let fixed: number | undefined;
  if (flags & MREMAP_FIXED) {
    fixed = ptr(a[4]);
    if (!isPageAligned(fixed)) return -EINVAL;
    if (fixed < MMAP_MIN_ADDR) return -EPERM;
  }
  const r = p.aspace.remap(old, oldLen, newLen, fixed === undefined ? { mayMove: (flags & MREMAP_MAYMOVE) !== 0 } : { mayMove: true, fixed });
  if (typeof r === 'number') return r;
  return r === 'EFAULT' ? -EFAULT : r === 'ENOMEM' ? -ENOMEM : -EINVAL;
};

const msync: SyscallHandler = (p, _t, a) => {
  const start = ptr(a[0]);
  const len = size(a[1]);
  if (!isPageAligned(start) || int(a[2]) & ~7) return -EINVAL;
  if (len === 0) return 0;
  return p.aspace.isMapped(start, pageUp(len)) ? 0 : -ENOMEM;
};

/** Memory is always resident: locking succeeds without doing anything. */
const mlock: SyscallHandler = () => 0;

export const memorySyscalls: Record<string, SyscallHandler> = {
  brk,
  mmap,
  munmap,
  mprotect,
  madvise,
  mremap,
  msync,
  mlock,
  munlock: mlock,
  mlockall: mlock,
  munlockall: mlock,
  mlock2: mlock,
};
