/** Linux x86-64 errno values the syscall layer returns (negated). */
export const EPERM = 1;
export const ENOENT = 2;
export const ESRCH = 3;
export const EINTR = 4;
export const EIO = 5;
export const EBADF = 9;
export const ECHILD = 10;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EFAULT = 14;
export const EBUSY = 16;
export const EEXIST = 17;
export const ENODEV = 19;
export const ENOTDIR = 20;
export const EISDIR = 21;
export const EINVAL = 22;
export const ENFILE = 23;
export const EMFILE = 24;
export const ENOTTY = 25;
export const EFBIG = 27;
export const ENOSPC = 28;
export const ESPIPE = 29;
export const EROFS = 30;
export const EPIPE = 32;
export const ERANGE = 34;
export const EDEADLK = 35;
export const ENAMETOOLONG = 36;
export const ENOSYS = 38;
export const ENOTEMPTY = 39;
export const ELOOP = 40;
export const ENODATA = 61;
export const EOVERFLOW = 75;
export const ENOTSOCK = 88;
export const EOPNOTSUPP = 95;
export const ETIMEDOUT = 110;

/** Maps a Node fs error code (e.g. 'ENOENT') to a Linux errno; EIO for anything unknown. */
export function errnoFromNode(err: unknown): number {
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ENOENT': return ENOENT;
    case 'EACCES': return EACCES;
    case 'EPERM': return EACCES;
    case 'ENOTDIR': return ENOTDIR;
    case 'EISDIR': return EISDIR;
    case 'ELOOP': return ELOOP;
    case 'ENAMETOOLONG': return ENAMETOOLONG;
    case 'EINVAL': return EINVAL;
    case 'EMFILE': return EMFILE;
    case 'ENFILE': return ENFILE;
    case 'EAGAIN': return EAGAIN;
    case 'EOVERFLOW': return EOVERFLOW;
    case 'ESPIPE': return ESPIPE;
    case 'EBADF': return EBADF;
    case 'EPIPE': return EPIPE;
    case 'ENOSPC': return ENOSPC;
    case 'EFBIG': return EFBIG;
    default: return EIO;
  }
}
