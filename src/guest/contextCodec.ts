/**
 * ThreadContext on the wire (worker messages, handoffs, checkpoints): a versioned msgpack record.
 * 64-bit registers travel as one little-endian binary blob, so encoding needs no bigint support
 * from msgpack and decoding is a few DataView reads. Decoding validates version and shape and
 * names the bad field.
 */
import { Packr } from 'msgpackr';
import {
  THREAD_CONTEXT_VERSION,
  ThreadContextFormatError,
  validateThreadContext,
  type ThreadContext,
} from './threadContext.js';

const packr = new Packr({ useRecords: false, moreTypes: false });

/** gpr[16], rip, rflags, fsBase, gsBase, x87.fip, x87.fdp */
const REG_COUNT = 22;

interface WireContext {
  v: number;
  regs: Uint8Array;
  seg: number[];
  xmm: Uint8Array;
  mxcsr: number;
  x87: number[]; // fcw, fsw, ftw, fop
  st: Uint8Array;
}

export function encodeThreadContext(tc: ThreadContext): Uint8Array {
  const regs = new Uint8Array(REG_COUNT * 8);
  const dv = new DataView(regs.buffer);
  tc.gpr.forEach((g, i) => dv.setBigUint64(i * 8, g, true));
  const tail = [tc.rip, tc.rflags, tc.fsBase, tc.gsBase, tc.x87.fip, tc.x87.fdp];
  tail.forEach((v, i) => dv.setBigUint64((16 + i) * 8, v, true));
  const wire: WireContext = {
    v: tc.version,
    regs,
    seg: [tc.seg.cs, tc.seg.ss, tc.seg.ds, tc.seg.es, tc.seg.fs, tc.seg.gs],
    xmm: tc.xmm,
    mxcsr: tc.mxcsr,
    x87: [tc.x87.fcw, tc.x87.fsw, tc.x87.ftw, tc.x87.fop],
    st: tc.x87.st,
  };
  return packr.pack(wire);
}

export function decodeThreadContext(bytes: Uint8Array): ThreadContext {
  let w: Partial<WireContext>;
  try {
    w = packr.unpack(bytes) as Partial<WireContext>;
  } catch (e) {
    throw new ThreadContextFormatError('(encoding)', `not a msgpack record: ${(e as Error).message}`);
  }
  if (typeof w !== 'object' || w === null) throw new ThreadContextFormatError('(root)', 'not a record');
  if (w.v !== THREAD_CONTEXT_VERSION) {
    throw new ThreadContextFormatError('version', `expected ${THREAD_CONTEXT_VERSION}, got ${String(w.v)}`);
  }
  const blob = (x: unknown, field: string, len: number): Uint8Array => {
    if (!(x instanceof Uint8Array) || x.length !== len) throw new ThreadContextFormatError(field, `expected ${len} bytes`);
    return new Uint8Array(x); // own copy, detached from the message buffer
  };
  const nums = (x: unknown, field: string, len: number): number[] => {
    if (!Array.isArray(x) || x.length !== len || !x.every((n) => typeof n === 'number')) {
      throw new ThreadContextFormatError(field, `expected ${len} numbers`);
    }
    return x as number[];
  };
  const regs = blob(w.regs, 'regs', REG_COUNT * 8);
  const dv = new DataView(regs.buffer);
  const q = (i: number) => dv.getBigUint64(i * 8, true);
  const seg = nums(w.seg, 'seg', 6);
  const x87 = nums(w.x87, 'x87', 4);
  const tc = {
    version: THREAD_CONTEXT_VERSION,
    gpr: Array.from({ length: 16 }, (_, i) => q(i)),
    rip: q(16),
    rflags: q(17),
    fsBase: q(18),
    gsBase: q(19),
    seg: { cs: seg[0], ss: seg[1], ds: seg[2], es: seg[3], fs: seg[4], gs: seg[5] },
    xmm: blob(w.xmm, 'xmm', 256),
    mxcsr: w.mxcsr,
    x87: { fcw: x87[0], fsw: x87[1], ftw: x87[2], fop: x87[3], fip: q(20), fdp: q(21), st: blob(w.st, 'x87.st', 80) },
  };
  return validateThreadContext(tc);
}
