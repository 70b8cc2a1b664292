import fs from 'node:fs';
import os from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { STACK_SIZE, STACK_TOP } from '../../src/guest/layout.js';
import { GuestRandom } from '../../src/guest/random.js';
import { Gpr } from '../../src/guest/threadContext.js';
import { type TestGuest, makeGuest } from './guest-support.js';

const AT = {
  NULL: 0, PHDR: 3, PHENT: 4, PHNUM: 5, PAGESZ: 6, BASE: 7, FLAGS: 8, ENTRY: 9, UID: 11, EUID: 12, GID: 13,
  EGID: 14, PLATFORM: 15, HWCAP: 16, CLKTCK: 17, SECURE: 23, RANDOM: 25, HWCAP2: 26, EXECFN: 31, MINSIGSTKSZ: 51,
};

let g: TestGuest | undefined;
afterEach(() => {
  if (g) fs.rmSync(g.dir, { recursive: true, force: true });
  g = undefined;
});

function cstr(guest: TestGuest, addr: number): string {
  return guest.process.aspace.readCString(addr, 4096)!;
}

describe('initial process stack', () => {
  it('is laid out like Linux create_elf_tables, word by word', () => {
    g = makeGuest();
    const as = g.process.aspace;
    const rsp = Number(g.context.gpr[Gpr.rsp]!);
    expect(rsp % 16).toBe(0);
    expect(g.context.rip).toBe(0x4000b0n);
    const word = (i: number) => Number(as.readU64(rsp + i * 8));

    let i = 0;
    expect(word(i++)).toBe(2); // argc
    const argv = [word(i++), word(i++)];
    expect(word(i++)).toBe(0);
    const envp = [word(i++), word(i++)];
    expect(word(i++)).toBe(0);
    expect(argv.map((a) => cstr(g!, a))).toEqual(['prog', 'arg1']);
    expect(envp.map((a) => cstr(g!, a))).toEqual(['HOME=/root', 'LANG=C']);

    const auxv: [number, number][] = [];
    for (;;) {
      const k = word(i++);
      const v = word(i++);
      auxv.push([k, v]);
      if (k === AT.NULL) break;
    }
    expect(auxv.map(([k]) => k)).toEqual([
      AT.MINSIGSTKSZ, AT.HWCAP, AT.PAGESZ, AT.CLKTCK, AT.PHDR, AT.PHENT, AT.PHNUM, AT.BASE, AT.FLAGS, AT.ENTRY,
      AT.UID, AT.EUID, AT.GID, AT.EGID, AT.SECURE, AT.RANDOM, AT.HWCAP2, AT.EXECFN, AT.PLATFORM, AT.NULL,
    ]);
    const aux = new Map(auxv);
    expect(aux.get(AT.HWCAP)).toBe(0x178bfbff);
    expect(aux.get(AT.HWCAP2)).toBe(2);
    expect(aux.get(AT.PAGESZ)).toBe(4096);
    expect(aux.get(AT.CLKTCK)).toBe(100);
    expect(aux.get(AT.PHDR)).toBe(0x400040);
    expect(aux.get(AT.PHENT)).toBe(56);
    expect(aux.get(AT.PHNUM)).toBe(2);
    expect(aux.get(AT.BASE)).toBe(0);
    expect(aux.get(AT.FLAGS)).toBe(0);
    expect(aux.get(AT.ENTRY)).toBe(0x4000b0);
    expect([aux.get(AT.UID), aux.get(AT.EUID), aux.get(AT.GID), aux.get(AT.EGID)]).toEqual([1234, 1234, 5678, 5678]);
    expect(aux.get(AT.SECURE)).toBe(0);
    // AT_PHDR really points at the program headers (first one is PT_LOAD)
    expect(as.readU32(aux.get(AT.PHDR)!)).toBe(1);

    // strings: argv[0] lowest … envp … execfn, then 8 zero bytes up to STACK_TOP
    const execFn = aux.get(AT.EXECFN)!;
    expect(cstr(g, execFn)).toBe(`${g.dir}/prog`);
    expect(execFn + Buffer.byteLength(`${g.dir}/prog`) + 1 + 8).toBe(STACK_TOP);
    expect(as.readU64(STACK_TOP - 8)).toBe(0n);
    expect(argv[1]).toBe(argv[0]! + 5);
    expect(envp[0]).toBe(argv[1]! + 5);
    expect(envp[1]).toBe(envp[0]! + 11);
    expect(execFn).toBe(envp[1]! + 7);

    // below the 16-aligned string area: "x86_64", then the 16 random bytes
    const platform = aux.get(AT.PLATFORM)!;
    expect(cstr(g, platform)).toBe('x86_64');
    expect(platform + 7).toBe(argv[0]! - (argv[0]! % 16));
    const random = aux.get(AT.RANDOM)!;
    expect(random).toBe(platform - 16);
    expect([...as.read(random, 16)]).toEqual([...GuestRandom.fromSeed(42n).bytes(16)]);
    // the rounding gap sits between the end of auxv and the random bytes
    const auxEnd = rsp + i * 8;
    expect(auxEnd).toBeLessThanOrEqual(random);
    expect(random - auxEnd).toBeLessThan(16);

    const stack = as.vmas.find((v) => v.kind === 'stack')!;
    expect(stack).toMatchObject({ start: STACK_TOP - STACK_SIZE, end: STACK_TOP, prot: 3, name: '[stack]' });
  });

  it('keeps rsp 16-byte aligned for any argument count', () => {
    for (const argv of [['a'], ['a', 'b'], ['a', 'b', 'c'], ['x'.repeat(33), 'y']]) {
      for (const envp of [[], ['E=1'], ['E=1', 'F=22']]) {
        const guest = makeGuest({ argv, envp });
        try {
          const rsp = Number(guest.context.gpr[Gpr.rsp]!);
          expect(rsp % 16).toBe(0);
          expect(Number(guest.process.aspace.readU64(rsp))).toBe(argv.length);
          expect(guest.process.aspace.readU64(rsp + 8 * (argv.length + 1))).toBe(0n);
        } finally {
          fs.rmSync(guest.dir, { recursive: true, force: true });
        }
      }
    }
  });

  it('refuses arguments with NUL characters or beyond the Linux limits', () => {
    const allowRead = [os.tmpdir()];
    expect(() => makeGuest({ argv: ['a\0b'], allowRead })).toThrow(/NUL/);
    expect(() => makeGuest({ argv: ['x'.repeat(200_000)], allowRead })).toThrow(/E2BIG/);
  });
});
