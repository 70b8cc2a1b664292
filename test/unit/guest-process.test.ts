import fs from 'node:fs';
import path from 'node:path';
import { Packr } from 'msgpackr';
import { afterEach, describe, expect, it } from 'vitest';
import { parseElf } from '../../src/guest/elf.js';
import { ElfError, ProcessStateFormatError } from '../../src/guest/errors.js';
import { M5OP_PHYS, M5OP_VADDR, MMAP_BASE, STACK_TOP, pageUp } from '../../src/guest/layout.js';
import { Process, type ProcessState } from '../../src/guest/process.js';
import { GuestRandom } from '../../src/guest/random.js';
import { Gpr } from '../../src/guest/threadContext.js';
import {
  FakeThread,
  type TestGuest,
  checkTablesAgree,
  findWorkload,
  makeElf,
  makeGuest,
  newPhys,
} from './guest-support.js';

const packr = new Packr({ useRecords: false, moreTypes: false });
const AT_FDCWD = -100;

const guests: TestGuest[] = [];
function guest(...args: Parameters<typeof makeGuest>): TestGuest {
  const g = makeGuest(...args);
  guests.push(g);
  return g;
}
afterEach(() => {
  for (const g of guests.splice(0)) {
    g.process.close();
    fs.rmSync(g.dir, { recursive: true, force: true });
  }
});

function translations(p: Process): (number | string)[] {
  const out: (number | string)[] = [];
  for (const v of p.aspace.vmas) {
    for (let va = v.start; va < v.end; va += 4096) {
      for (const acc of ['read', 'write', 'exec'] as const) {
        try {
          out.push(p.aspace.translate(va, acc));
        } catch (e) {
          out.push((e as Error).message);
        }
      }
    }
  }
  return out;
}

describe('loading', () => {
  it('maps segments with their permissions, zeroes bss, sets brk, stack and the m5op window', () => {
    const g = guest();
    const as = g.process.aspace;
    const kinds = as.vmas.filter((v) => v.start !== g.buf).map((v) => [v.start, v.end, v.prot, v.kind]);
    expect(kinds).toEqual([
      [0x400000, 0x401000, 5, 'elf'],
      [0x401000, 0x404000, 3, 'elf'],
      [M5OP_VADDR, M5OP_VADDR + 0x10000, 3, 'io'],
      [STACK_TOP - 8 * 1024 * 1024, STACK_TOP, 3, 'stack'],
    ]);
    expect([...as.read(0x401000, 4)]).toEqual([0xde, 0xad, 0xbe, 0xef]);
    expect(as.read(0x401010, 0x2ff0).every((b) => b === 0)).toBe(true);
    expect(as.brkStart).toBe(0x404000);
    expect(as.translate(M5OP_VADDR + 0x2100, 'read')).toBe(M5OP_PHYS + 0x2100);
    expect(() => as.translate(0x400000, 'write')).toThrow(/permission denied/);
    expect(as.translate(0x4000b0, 'exec')).toBeGreaterThan(0);
    expect(() => as.translate(0x401000, 'exec')).toThrow(/permission denied/);
    checkTablesAgree(as);
    expect(g.context.rip).toBe(0x4000b0n);
  });

  it('maps a page shared by two segments once, with file bytes as Linux file mappings give them', () => {
    const elf = makeElf();
    const v = new DataView(elf.buffer);
    v.setUint32(64 + 4, 7, true); // both RWX (the parser insists that shared pages agree)
    v.setUint32(64 + 56 + 4, 7, true);
    // second segment starts inside the first one's page: file offset 0xf0 at vaddr 0x4000f0
    v.setBigUint64(64 + 56 + 8, 0xf0n, true);
    v.setBigUint64(64 + 56 + 16, 0x4000f0n, true);
    v.setBigUint64(64 + 56 + 24, 0x4000f0n, true);
    elf.set([0x11, 0x22], 0xf0);
    const { process } = Process.load(newPhys(), elf, {
      exePath: '/nonexistent/prog', argv: ['p'], envp: [], allowRead: [], seed: 1n, hwcap: 0, hwcap2: 0,
      io: { write: () => {}, read: () => new Uint8Array(0) }, warn: () => {},
    });
    const elfVmas = process.aspace.vmas.filter((x) => x.kind === 'elf');
    expect(elfVmas).toEqual([{ start: 0x400000, end: 0x404000, prot: 7, kind: 'elf', name: 'prog' }]);
    expect([...process.aspace.read(0x4000f0, 2)]).toEqual([0x11, 0x22]);
    expect(process.aspace.read(0x400100, 0x2ff0).every((b) => b === 0)).toBe(true); // bss
    expect(process.aspace.readU32(0x400000)).toBe(0x464c457f); // the headers are in that page too
  });

  it('places a static-PIE image top-down like its first mmap and biases entry and AT_PHDR', () => {
    const { process, context } = Process.load(newPhys(), makeElf({ type: 'dyn' }), {
      exePath: '/nonexistent/prog', argv: ['p'], envp: [], allowRead: [], seed: 1n, hwcap: 0, hwcap2: 0,
      io: { write: () => {}, read: () => new Uint8Array(0) }, warn: () => {},
    });
    const base = process.aspace.vmas.find((v) => v.kind === 'elf')!.start;
    expect(base).toBeGreaterThan(0x7f0000000000);
    expect(base + 0x4000).toBeLessThanOrEqual(MMAP_BASE);
    expect(context.rip).toBe(BigInt(base + 0xb0));
    expect(process.aspace.brkStart).toBe(base + 0x4000);
  });

  it('rejects a bad ELF with ElfError', () => {
    const elf = makeElf();
    elf[18] = 3; // e_machine EM_386
    expect(() => Process.load(newPhys(), elf, {
      exePath: '/x', argv: [], envp: [], allowRead: [], seed: 1n, hwcap: 0, hwcap2: 0,
    })).toThrow(ElfError);
  });

  for (const name of ['checksum', 'libc_hello']) {
    const found = findWorkload(name);
    const run = 'path' in found ? it : it.skip;
    run(`loads the gcc-built static binary workloads/build/${name}${'skip' in found ? ` [skipped: ${found.skip}]` : ''}`, () => {
      if (!('path' in found)) return;
      const bytes = new Uint8Array(fs.readFileSync(found.path));
      const image = parseElf(bytes, { memSize: 64 * 1024 * 1024 });
      const { process, context } = Process.load(newPhys(64 * 1024 * 1024), bytes, {
        exePath: found.path, argv: [name, '10'], envp: ['A=B'], allowRead: [], seed: 7n, hwcap: 0x178bfbff, hwcap2: 2,
        io: { write: () => {}, read: () => new Uint8Array(0) }, warn: () => {},
      });
      const as = process.aspace;
      expect(context.rip).toBe(image.entry);
      for (const l of image.loads) {
        const fileBytes = bytes.subarray(l.offset, l.offset + l.filesz);
        const mem = as.read(l.vaddr, l.filesz);
        expect(Buffer.compare(Buffer.from(mem), Buffer.from(fileBytes))).toBe(0);
        if (l.memsz > l.filesz) expect(as.read(l.vaddr + l.filesz, l.memsz - l.filesz).every((b) => b === 0)).toBe(true);
        const v = as.findVma(l.vaddr)!;
        expect(v.prot & l.prot).toBe(l.prot);
      }
      expect(as.brkStart).toBe(pageUp(image.highestAddress));
      const rsp = Number(context.gpr[Gpr.rsp]!);
      expect(rsp % 16).toBe(0);
      expect(as.readU64(rsp)).toBe(2n);
      checkTablesAgree(as);
      if (image.phdrVaddr !== undefined) {
        // AT_PHDR's first entry has the type of the file's first program header
        expect(as.readU32(image.phdrVaddr)).toBe(image.phdrs[0]!.type);
      }
    });
  }
});

describe('process snapshots', () => {
  it('round-trip through msgpack: identical translations, memory, fds and RNG', () => {
    const g = guest();
    const p = g.process;
    const file = path.join(g.dir, 'sub', 'inner.bin');
    const str = (s: string) => {
      g.writeString(g.buf + 0x8000, s);
      return g.buf + 0x8000;
    };
    const fd = g.sys('openat', AT_FDCWD, str(file), 0o2000000, 0);
    expect(g.sys('read', fd, g.buf, 1000)).toBe(1000);
    const dupfd = g.sys('dup2', fd, 9);
    expect(dupfd).toBe(9);
    g.sys('close', 2);
    const m = g.sys('mmap', 0, 40960, 3, 0x22, -1, 0);
    g.sys('mprotect', m + 8192, 4096, 1);
    g.sys('munmap', m + 16384, 4096);
    g.sys('brk', g.sys('brk', 0) + 20000);
    p.aspace.write(m, Uint8Array.of(1, 2, 3));
    g.sys('rt_sigaction', 2, g.buf + 0x100, 0, 8); // zeros: SIG_DFL
    p.aspace.writeU64(g.buf, 1n << 10n);
    g.sys('rt_sigprocmask', 0, g.buf, 0, 8);
    g.sys(500); // warned once
    const state = p.snapshot();
    const encoded = packr.pack(state);

    // restore into a copy of physical memory (as a checkpoint would) and compare
    const phys2 = newPhys();
    phys2.bytes.set(g.phys.bytes);
    const warnings: string[] = [];
    const q = Process.restore(phys2, packr.unpack(encoded), {
      allowRead: [g.dir],
      io: { write: () => {}, read: () => new Uint8Array(0) },
      warn: (w) => warnings.push(w),
    });
    try {
      expect(translations(q)).toEqual(translations(p));
      expect(q.aspace.cr3).toBe(p.aspace.cr3);
      expect(q.snapshot()).toEqual(p.snapshot());
      expect([...q.aspace.read(m, 3)]).toEqual([1, 2, 3]);
      expect(q.fds.openFds()).toEqual([0, 1, 3, 9]);
      expect(q.fds.isCloexec(3)).toBe(true);
      expect(q.fds.get(3)).toBe(q.fds.get(9)); // still one shared description
      checkTablesAgree(q.aspace);

      // both continue identically
      const t = new FakeThread();
      const call = (proc: Process, nr: number, ...a: number[]) =>
        proc.syscall(t, nr, [0, 1, 2, 3, 4, 5].map((i) => BigInt(a[i] ?? 0)));
      expect(call(q, 0, 9, g.buf, 16)).toEqual(call(p, 0, 9, g.buf, 16)); // read 16 more
      expect([...q.aspace.read(g.buf, 16)]).toEqual([...p.aspace.read(g.buf, 16)]);
      expect([...q.aspace.read(g.buf, 16)]).toEqual(Array.from({ length: 16 }, (_, i) => (1000 + i) & 0xff));
      expect(call(q, 318, g.buf, 32, 0)).toEqual(call(p, 318, g.buf, 32, 0)); // getrandom
      expect([...q.aspace.read(g.buf, 32)]).toEqual([...p.aspace.read(g.buf, 32)]);
      expect(call(q, 9, 0, 8192, 3, 0x22, -1, 0)).toEqual(call(p, 9, 0, 8192, 3, 0x22, -1, 0));
      expect(call(q, 1, 2, g.buf, 1)).toEqual({ kind: 'return', value: 2n ** 64n - 9n }); // fd 2 stays closed
      call(q, 500);
      expect(warnings).toEqual([]); // already warned before the snapshot
    } finally {
      q.close();
    }
  });

  it('restore with a damaged state names the bad field', () => {
    const g = guest();
    g.writeString(g.buf, path.join(g.dir, 'hello.txt'));
    g.sys('openat', AT_FDCWD, g.buf, 0, 0);
    const good = g.process.snapshot();
    const tryRestore = (mutate: (s: Record<string, any>) => void) => {
      const s = structuredClone(good) as unknown as Record<string, any>;
      mutate(s);
      return () => Process.restore(newPhys(), s, { allowRead: [g.dir] });
    };
    const cases: [(s: Record<string, any>) => void, RegExp][] = [
      [(s) => { s.version = 99; }, /\(version\)/],
      [(s) => { delete s.identity; }, /\(identity\)/],
      [(s) => { s.identity.pid = -4; }, /identity\.pid/],
      [(s) => { s.random = [0, 0, 0, 0]; }, /\(random\)/],
      [(s) => { s.fds.files[1].offset = -1; }, /fds\.files\[1\]\.offset/],
      [(s) => { s.fds.files[1].kind = 'socket'; }, /fds\.files\[1\]\.kind/],
      [(s) => { s.fds.fds[0].file = 999; }, /fds\.fds\[0\]\.file/],
      [(s) => { s.fds.files[3].path = '/etc/passwd'; }, /fds\.files\[3\]\.path.*not under an allowed directory/],
      [(s) => { s.fds.files[3].path = path.join(g.dir, 'gone.txt'); }, /fds\.files\[3\]\.path.*cannot reopen/],
      [(s) => { s.addressSpace.vmas[1].start = 3; }, /addressSpace\.vmas\[1\]\.start/],
      [(s) => { s.addressSpace.pageTables.pages.push(1); }, /addressSpace\.pageTables\.pages/],
      [(s) => { s.rlimits.pop(); }, /\(rlimits\)/],
      [(s) => { s.signals.mask = 'x'; }, /signals\.mask/],
      [(s) => { s.exitStatus = 1000; }, /exitStatus/],
    ];
    for (const [mutate, field] of cases) {
      const attempt = tryRestore(mutate);
      expect(attempt).toThrow(ProcessStateFormatError);
      expect(attempt).toThrow(field);
    }
    expect(() => Process.restore(newPhys(), 'garbage', { allowRead: [] })).toThrow(/\(root\)/);
    expect(() => Process.restore(newPhys(), good as ProcessState, { allowRead: [g.dir] })).not.toThrow();
  });

  it('the RNG state survives a snapshot', () => {
    const r = GuestRandom.fromSeed(99n);
    r.bytes(13);
    const s = GuestRandom.restore(r.snapshot());
    expect([...s.bytes(40)]).toEqual([...r.bytes(40)]);
    expect([...GuestRandom.fromSeed(0n).bytes(8)]).not.toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
  });
});
