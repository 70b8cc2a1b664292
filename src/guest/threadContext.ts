/**
 * The architectural state of the one guest thread, in a form every CPU model converts to and
 * from. GPRs are in x86 encoding order so an instruction's register number indexes `gpr`.
 */
import { UserError } from '../errors.js';

export const THREAD_CONTEXT_VERSION = 1;

export const GPR_NAMES = [
  'rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi',
  'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15',
] as const;
export type GprName = (typeof GPR_NAMES)[number];
export const enum Gpr {
  rax = 0, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15,
}

export interface SegmentSelectors {
  cs: number;
  ss: number;
  ds: number;
  es: number;
  fs: number;
  gs: number;
}

export interface X87State {
  fcw: number;
  fsw: number;
  /** Abridged tag word as FXSAVE stores it: bit i set = st(i) physical register valid. */
  ftw: number;
  fop: number;
  fip: bigint;
  fdp: bigint;
  /** st0–st7, 10 bytes each (80-bit extended), 80 bytes. */
  st: Uint8Array;
}

export interface ThreadContext {
  version: typeof THREAD_CONTEXT_VERSION;
  /** rax…r15, 16 unsigned 64-bit values. */
  gpr: bigint[];
  rip: bigint;
  rflags: bigint;
  fsBase: bigint;
  gsBase: bigint;
  seg: SegmentSelectors;
  /** xmm0–xmm15, 16 bytes each little-endian, 256 bytes. */
  xmm: Uint8Array;
  mxcsr: number;
  x87: X87State;
}

export const USER_CS = 0x33;
export const USER_SS = 0x2b;

export function initialThreadContext(entry: bigint, stackPointer: bigint): ThreadContext {
  const gpr = new Array<bigint>(16).fill(0n);
  gpr[Gpr.rsp] = stackPointer;
  return {
    version: THREAD_CONTEXT_VERSION,
    gpr,
    rip: entry,
    rflags: 0x202n,
    fsBase: 0n,
    gsBase: 0n,
    seg: { cs: USER_CS, ss: USER_SS, ds: 0, es: 0, fs: 0, gs: 0 },
    xmm: new Uint8Array(256),
    mxcsr: 0x1f80,
    x87: { fcw: 0x37f, fsw: 0, ftw: 0, fop: 0, fip: 0n, fdp: 0n, st: new Uint8Array(80) },
  };
}

export function cloneThreadContext(tc: ThreadContext): ThreadContext {
  return {
    ...tc,
    gpr: [...tc.gpr],
    seg: { ...tc.seg },
    xmm: tc.xmm.slice(),
    x87: { ...tc.x87, st: tc.x87.st.slice() },
  };
}

/** A decoded ThreadContext that is not one: names the field at fault. */
export class ThreadContextFormatError extends UserError {
  constructor(readonly field: string, message: string) {
    super(`bad thread context (${field}): ${message}`);
  }
}

const U64_MAX = (1n << 64n) - 1n;

/** Checks shape and ranges of a value that claims to be a ThreadContext (e.g. just decoded). */
export function validateThreadContext(value: unknown): ThreadContext {
  const fail = (field: string, msg: string): never => {
    throw new ThreadContextFormatError(field, msg);
  };
  if (typeof value !== 'object' || value === null) fail('(root)', 'not an object');
  const v = value as Record<string, unknown>;
  if (v.version !== THREAD_CONTEXT_VERSION) {
    fail('version', `expected ${THREAD_CONTEXT_VERSION}, got ${String(v.version)}`);
  }
  const u64 = (x: unknown, field: string): bigint => {
    if (typeof x !== 'bigint' || x < 0n || x > U64_MAX) fail(field, 'not an unsigned 64-bit bigint');
    return x as bigint;
  };
  const int = (x: unknown, field: string, max: number): number => {
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x > max) fail(field, `not an integer in [0, ${max}]`);
    return x as number;
  };
  const bytes = (x: unknown, field: string, len: number): Uint8Array => {
    if (!(x instanceof Uint8Array) || x.length !== len) fail(field, `not ${len} bytes`);
    return x as Uint8Array;
  };
  if (!Array.isArray(v.gpr) || v.gpr.length !== 16) fail('gpr', 'not 16 registers');
  (v.gpr as unknown[]).forEach((g, i) => u64(g, `gpr.${GPR_NAMES[i]}`));
  u64(v.rip, 'rip');
  u64(v.rflags, 'rflags');
  u64(v.fsBase, 'fsBase');
  u64(v.gsBase, 'gsBase');
  const seg = v.seg as Record<string, unknown> | undefined;
  if (typeof seg !== 'object' || seg === null) fail('seg', 'missing');
  for (const s of ['cs', 'ss', 'ds', 'es', 'fs', 'gs']) int(seg![s], `seg.${s}`, 0xffff);
  bytes(v.xmm, 'xmm', 256);
  int(v.mxcsr, 'mxcsr', 0xffffffff);
  const x87 = v.x87 as Record<string, unknown> | undefined;
  if (typeof x87 !== 'object' || x87 === null) fail('x87', 'missing');
  int(x87!.fcw, 'x87.fcw', 0xffff);
  int(x87!.fsw, 'x87.fsw', 0xffff);
  int(x87!.ftw, 'x87.ftw', 0xff);
  int(x87!.fop, 'x87.fop', 0xffff);
  u64(x87!.fip, 'x87.fip');
  u64(x87!.fdp, 'x87.fdp');
  bytes(x87!.st, 'x87.st', 80);
  return value as ThreadContext;
}
