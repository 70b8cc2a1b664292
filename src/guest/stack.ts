/**
 * The initial process stack, laid out exactly as Linux's exec (fs/exec.c + create_elf_tables in
 * fs/binfmt_elf.c) does without stack randomization, so libc start-up code finds what it
 * expects. From the top:
 *
 *   STACK_TOP - 8 … STACK_TOP   8 zero bytes (bprm->p starts one pointer below the top)
 *   execfn string               AT_EXECFN points here
 *   envp strings, argv strings  argv[0] lowest
 *   (align down to 16)
 *   "x86_64\0"                  AT_PLATFORM
 *   16 random bytes             AT_RANDOM
 *   (gap from rounding)
 *   auxv pairs … AT_NULL
 *   NULL, envp pointers
 *   NULL, argv pointers
 *   argc                        ← rsp, 16-byte aligned
 */
import type { AddressSpace } from './addressSpace.js';
import { GuestSetupError } from './errors.js';
import {
  AT_BASE,
  AT_CLKTCK,
  AT_EGID,
  AT_ENTRY,
  AT_EUID,
  AT_EXECFN,
  AT_FLAGS,
  AT_GID,
  AT_HWCAP,
  AT_HWCAP2,
  AT_MINSIGSTKSZ,
  AT_NULL,
  AT_PAGESZ,
  AT_PHDR,
  AT_PHENT,
  AT_PHNUM,
  AT_PLATFORM,
  AT_RANDOM,
  AT_SECURE,
  AT_UID,
  CLOCKS_PER_SEC,
} from './syscalls/abi.js';
import { PAGE_SIZE } from './physmem.js';

/** Linux MAX_ARG_STRLEN: longest single argument or environment string (with its NUL). */
export const MAX_ARG_STRLEN = 32 * PAGE_SIZE;
export const PLATFORM = 'x86_64';

export interface InitialStackSpec {
  argv: readonly string[];
  envp: readonly string[];
  /** AT_EXECFN: the path the program was executed as. */
  execFn: string;
  /** 16 bytes for AT_RANDOM. */
  random: Uint8Array;
  hwcap: number;
  hwcap2: number;
  minSigStkSz: number;
  phdr: number;
  phent: number;
  phnum: number;
  entry: number;
  uid: number;
  gid: number;
}

export interface InitialStack {
  rsp: number;
  argv: number[];
  envp: number[];
  execFn: number;
  platform: number;
  random: number;
  /** The auxiliary vector as written (type, value) including AT_NULL. */
  auxv: [number, number][];
}

/** Writes the initial stack below `stackTop` (the stack VMA must be mapped and writable). */
export function buildInitialStack(as: AddressSpace, stackTop: number, spec: InitialStackSpec, stackLimit: number): InitialStack {
  if (spec.random.length !== 16) throw new GuestSetupError('AT_RANDOM needs exactly 16 bytes');
  const encode = (s: string, what: string): Uint8Array => {
    const b = Buffer.from(`${s}\0`, 'utf8');
    if (b.indexOf(0) !== b.length - 1) throw new GuestSetupError(`${what} contains a NUL character`);
    if (b.length > MAX_ARG_STRLEN) throw new GuestSetupError(`${what} is longer than ${MAX_ARG_STRLEN} bytes (E2BIG)`);
    return b;
  };
  const argvBytes = spec.argv.map((s, i) => encode(s, `argv[${i}]`));
  const envpBytes = spec.envp.map((s, i) => encode(s, `environment entry ${i}`));
  const execFnBytes = encode(spec.execFn, 'the executable path');
  const stringBytes = [...argvBytes, ...envpBytes].reduce((n, b) => n + b.length + 8, 0) + execFnBytes.length;
  // Linux allows argument + environment strings up to a quarter of the stack limit.
  if (stringBytes > stackLimit / 4) {
    throw new GuestSetupError(`arguments and environment take ${stringBytes} bytes, more than ${stackLimit / 4} (E2BIG)`);
  }

  let p = stackTop - 8;
  const push = (b: Uint8Array): number => {
    p -= b.length;
    as.write(p, b);
    return p;
  };
  const execFn = push(execFnBytes);
  const envp: number[] = new Array<number>(envpBytes.length);
  for (let i = envpBytes.length - 1; i >= 0; i--) envp[i] = push(envpBytes[i]!);
  const argv: number[] = new Array<number>(argvBytes.length);
  for (let i = argvBytes.length - 1; i >= 0; i--) argv[i] = push(argvBytes[i]!);

  p -= p % 16; // arch_align_stack without randomization
  const platform = push(encode(PLATFORM, 'platform'));
  const random = push(spec.random);

  const auxv: [number, number][] = [
    [AT_MINSIGSTKSZ, spec.minSigStkSz],
    [AT_HWCAP, spec.hwcap],
    [AT_PAGESZ, PAGE_SIZE],
    [AT_CLKTCK, CLOCKS_PER_SEC],
    [AT_PHDR, spec.phdr],
    [AT_PHENT, spec.phent],
    [AT_PHNUM, spec.phnum],
    [AT_BASE, 0],
    [AT_FLAGS, 0],
    [AT_ENTRY, spec.entry],
    [AT_UID, spec.uid],
    [AT_EUID, spec.uid],
    [AT_GID, spec.gid],
    [AT_EGID, spec.gid],
    [AT_SECURE, 0],
    [AT_RANDOM, random],
    [AT_HWCAP2, spec.hwcap2],
    [AT_EXECFN, execFn],
    [AT_PLATFORM, platform],
    [AT_NULL, 0],
  ];
  const items = argv.length + 1 + (envp.length + 1) + 1;
  let sp = p - auxv.length * 2 * 8;
  sp = sp - items * 8;
  sp -= ((sp % 16) + 16) % 16; // STACK_ROUND

  const words: number[] = [argv.length, ...argv, 0, ...envp, 0];
  for (const [k, v] of auxv) words.push(k, v);
  const table = new Uint8Array(words.length * 8);
  const dv = new DataView(table.buffer);
  words.forEach((w, i) => dv.setBigUint64(i * 8, BigInt(w), true));
  as.write(sp, table);
  return { rsp: sp, argv, envp, execFn, platform, random, auxv };
}
