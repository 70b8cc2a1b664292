/**
 * The integer ISA of the functional core (src/detailed/isa/int-*.ts), instruction by
 * instruction: results, all six arithmetic flags (including the ones Intel leaves undefined,
 * at the values Intel hardware produces, measured on KVM), memory, and faults.
 *
 * Each case assembles literal machine code (the assembly is beside it), runs it on the atomic
 * CPU in a tiny address space (code, two data pages, a stack) and ends at an appended ud2.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { AtomicCPU, type AtomicOutcome } from '../../src/detailed/atomicCpu.js';
import { AddressSpace } from '../../src/guest/addressSpace.js';
import { PROT_EXEC, PROT_READ, PROT_WRITE } from '../../src/guest/pageTables.js';
import { allocatePhysicalMemory } from '../../src/guest/physmem.js';
import { GPR_NAMES, type GprName, initialThreadContext } from '../../src/guest/threadContext.js';
import type { CpuidEntry } from '../../src/kvm/cpuid.js';

const CODE = 0x40_0000;
const DATA = 0x60_0000;
const DATA_SIZE = 0x2000; // two pages; 0x602000 is unmapped
const DATA_END = DATA + DATA_SIZE;
const STACK = 0x70_0000;
const STACK_SIZE = 0x2000;
const RSP0 = STACK + 0x1000;

const CF = 0x1;
const PF = 0x4;
const AF = 0x10;
const ZF = 0x40;
const SF = 0x80;
const DF = 0x400;
const OF = 0x800;
/** IF and the always-one bit 1: the flags every case starts from. */
const BASE = 0x202;

let aspace: AddressSpace;

beforeAll(() => {
  aspace = new AddressSpace(allocatePhysicalMemory(16 << 20, 'shared'));
  aspace.mapFixed(CODE, 0x1000, PROT_READ | PROT_EXEC, 'mmap', '[test-code]');
  aspace.mapFixed(DATA, DATA_SIZE, PROT_READ | PROT_WRITE, 'mmap', '[test-data]');
  aspace.mapFixed(STACK, STACK_SIZE, PROT_READ | PROT_WRITE, 'mmap', '[test-stack]');
});

interface Init {
  regs?: Partial<Record<GprName, bigint | number>>;
  flags?: number;
  /** Bytes to place in memory before the run, by address. */
  mem?: Record<number, number[] | Uint8Array>;
  cpuid?: readonly CpuidEntry[];
  fsBase?: bigint;
}

interface Result {
  out: AtomicOutcome;
  cpu: AtomicCPU;
  /** Ended at the appended ud2 (every instruction before it completed). */
  done: boolean;
  r(name: GprName): bigint;
  flags: number;
  /** The six arithmetic flags and DF. */
  arith: number;
  u8(addr: number): number;
  u64(addr: number): bigint;
  bytes(addr: number, n: number): number[];
}

const U64 = (v: bigint | number) => BigInt.asUintN(64, BigInt(v));

/** Runs `hex` (machine code; spaces allowed) followed by ud2. */
function run(hex: string, init: Init = {}): Result {
  const code = Buffer.from(`${hex.replace(/\s+/g, '')}0f0b`, 'hex');
  const page = new Uint8Array(0x1000).fill(0xcc);
  page.set(code);
  aspace.writeUnchecked(CODE, page);
  aspace.writeUnchecked(DATA, new Uint8Array(DATA_SIZE));
  aspace.writeUnchecked(STACK, new Uint8Array(STACK_SIZE));
  for (const [addr, data] of Object.entries(init.mem ?? {})) aspace.writeUnchecked(Number(addr), Uint8Array.from(data));
  const cpu = new AtomicCPU({ aspace, ...(init.cpuid ? { cpuid: init.cpuid } : {}) });
  const tc = initialThreadContext(BigInt(CODE), BigInt(RSP0));
  for (const [name, v] of Object.entries(init.regs ?? {})) tc.gpr[GPR_NAMES.indexOf(name as GprName)] = U64(v);
  tc.rflags = BigInt(init.flags ?? BASE);
  if (init.fsBase !== undefined) tc.fsBase = init.fsBase;
  cpu.setThreadContext(tc);
  const out = cpu.run(100_000);
  const end = cpu.getThreadContext();
  const done = out.kind === 'faulted' && out.report.signal === 'SIGILL' && Number(end.rip) === CODE + code.length - 2;
  const flags = Number(end.rflags);
  return {
    out,
    cpu,
    done,
    r: (name) => end.gpr[GPR_NAMES.indexOf(name)]!,
    flags,
    arith: flags & (CF | PF | AF | ZF | SF | OF | DF),
    u8: (addr) => aspace.readU8(addr),
    u64: (addr) => aspace.readU64(addr),
    bytes: (addr, n) => Array.from(aspace.read(addr, n)),
  };
}

/** Runs and requires a normal end. */
function ok(hex: string, init: Init = {}): Result {
  const res = run(hex, init);
  if (!res.done) throw new Error(`did not reach the final ud2: ${JSON.stringify(res.out)}`);
  return res;
}

function le64(v: bigint): number[] {
  return Array.from({ length: 8 }, (_, i) => Number((U64(v) >> BigInt(8 * i)) & 0xffn));
}

function fault(res: Result) {
  if (res.out.kind !== 'faulted') throw new Error(`expected a fault, got ${res.out.kind}`);
  return res.out.report;
}

describe('moves and sign extensions', () => {
  it('movzx/movsx/movsxd extend from the source width', () => {
    expect(ok('0fb6c3' /* movzx eax, bl */, { regs: { rax: -1n, rbx: 0x1ff } }).r('rax')).toBe(0xffn);
    expect(ok('480fbfc2' /* movsx rax, dx */, { regs: { rdx: 0x8001 } }).r('rax')).toBe(0xffffffffffff8001n);
    expect(ok('4863c1' /* movsxd rax, ecx */, { regs: { rcx: 0x1_8000_0000n } }).r('rax')).toBe(0xffffffff80000000n);
  });

  it('cbw/cwde/cdqe and cwd/cdq/cqo', () => {
    expect(ok('6698' /* cbw */, { regs: { rax: 0x1234_5680 } }).r('rax')).toBe(0x1234ff80n);
    expect(ok('98' /* cwde */, { regs: { rax: 0xffffffff_12348000n } }).r('rax')).toBe(0xffff8000n);
    expect(ok('4898' /* cdqe */, { regs: { rax: 0x8000_0000 } }).r('rax')).toBe(0xffffffff80000000n);
    expect(ok('6699' /* cwd */, { regs: { rax: 0x8000, rdx: 0x1111222233334444n } }).r('rdx')).toBe(0x111122223333ffffn);
    expect(ok('99' /* cdq */, { regs: { rax: 0x8000_0000, rdx: 0x1111222233334444n } }).r('rdx')).toBe(0xffffffffn);
    expect(ok('4899' /* cqo */, { regs: { rax: 1n << 63n } }).r('rdx')).toBe(U64(-1));
  });

  it('xchg with memory swaps both ways', () => {
    const res = ok('488703' /* xchg rax, [rbx] */, { regs: { rax: 0xaabbccdd, rbx: DATA }, mem: { [DATA]: le64(0x1122334455667788n) } });
    expect(res.r('rax')).toBe(0x1122334455667788n);
    expect(res.u64(DATA)).toBe(0xaabbccddn);
  });

  it('cmpxchg r32: equal writes the destination (zero-extended), not the accumulator', () => {
    const res = ok('0fb1d1' /* cmpxchg ecx, edx */, { regs: { rax: 0xffffffff_00000005n, rcx: 0xaaaaaaaa_00000005n, rdx: 0x77 } });
    expect(res.r('rcx')).toBe(0x77n);
    expect(res.r('rax')).toBe(0xffffffff_00000005n);
    expect(res.arith & ZF).toBe(ZF);
  });

  it('cmpxchg r32: unequal loads the accumulator and leaves the register destination whole', () => {
    const res = ok('0fb1d1', { regs: { rax: 0xffffffff_00000005n, rcx: 0xaaaaaaaa_00000006n, rdx: 0x77 } });
    expect(res.r('rax')).toBe(6n);
    expect(res.r('rcx')).toBe(0xaaaaaaaa_00000006n);
    // flags of cmp 5, 6
    expect(res.arith).toBe(CF | SF | AF | PF);
  });

  it('cmpxchg m64 unequal loads rax and writes memory back', () => {
    const res = ok('480fb113' /* cmpxchg [rbx], rdx */, { regs: { rax: 1, rbx: DATA, rdx: 9 }, mem: { [DATA]: le64(42n) } });
    expect(res.r('rax')).toBe(42n);
    expect(res.u64(DATA)).toBe(42n);
  });

  it('cmpxchg on a missing page faults as a write', () => {
    const r = fault(run('480fb113', { regs: { rbx: DATA_END } }));
    expect(r.signal).toBe('SIGSEGV');
    expect(r.errorCode).toBe(6);
  });

  it('xadd: dst = sum, src = old dst, flags of the add', () => {
    const res = ok('480fc1d1' /* xadd rcx, rdx */, { regs: { rcx: -1n, rdx: 1 } });
    expect(res.r('rcx')).toBe(0n);
    expect(res.r('rdx')).toBe(U64(-1));
    expect(res.arith).toBe(CF | ZF | AF | PF);
  });

  it('bswap 32 and 64', () => {
    expect(ok('0fc8' /* bswap eax */, { regs: { rax: 0xffffffff_11223344n } }).r('rax')).toBe(0x44332211n);
    expect(ok('480fc8' /* bswap rax */, { regs: { rax: 0x0102030405060708n } }).r('rax')).toBe(0x0807060504030201n);
  });

  it('movbe loads byte-reversed', () => {
    expect(ok('480f38f003' /* movbe rax, [rbx] */, { regs: { rbx: DATA }, mem: { [DATA]: [1, 2, 3, 4, 5, 6, 7, 8] } }).r('rax')).toBe(
      0x0102030405060708n,
    );
  });

  it('a 32-bit cmov zero-extends its destination even when the condition is false', () => {
    const init = { regs: { rax: 0xffffffff_12345678n, rcx: 0xabcdef }, flags: BASE | ZF };
    expect(ok('0f45c1' /* cmovnz eax, ecx */, init).r('rax')).toBe(0x12345678n);
    expect(ok('0f44c1' /* cmovz eax, ecx */, init).r('rax')).toBe(0xabcdefn);
  });

  it('setcc writes 0 or 1', () => {
    expect(ok('0f9cc0' /* setl al */, { regs: { rax: 0xff00 }, flags: BASE | SF }).r('rax')).toBe(0xff01n);
    expect(ok('0f9cc0', { regs: { rax: 0xff00 }, flags: BASE | SF | OF }).r('rax')).toBe(0xff00n);
  });

  it('16-bit push/pop move rsp by 2', () => {
    const res = ok('6652 6659' /* push dx; pop cx */, { regs: { rdx: 0xbeef, rcx: 0x1111_0000 } });
    expect(res.r('rcx')).toBe(0x1111beefn);
    expect(res.r('rsp')).toBe(BigInt(RSP0));
    expect(res.u8(RSP0 - 2)).toBe(0xef);
  });
});

describe('flag instructions, frames, loops', () => {
  it('popfq at CPL 3 cannot change IF or IOPL', () => {
    // push rax; popfq; pushfq; pop rbx
    const res = ok('50 9d 9c 5b', { regs: { rax: 0x3000 | CF | ZF | DF | OF } });
    expect(res.r('rbx')).toBe(BigInt(BASE | CF | ZF | DF | OF));
  });

  it('pushfq pushes the lazily computed flags', () => {
    // cmp eax, 1 (0 - 1); pushfq; pop rbx
    const res = ok('83f801 9c 5b', { regs: { rax: 0 } });
    expect(res.r('rbx')).toBe(BigInt(BASE | CF | PF | AF | SF));
  });

  it('lahf/sahf move SF ZF AF PF CF through ah', () => {
    expect(ok('9f' /* lahf */, { flags: BASE | SF | ZF | AF | PF | CF | OF }).r('rax')).toBe(0xd700n);
    expect(ok('9e' /* sahf */, { regs: { rax: 0xff00 }, flags: BASE | OF }).arith).toBe(OF | SF | ZF | AF | PF | CF);
  });

  it('clc/stc/cmc/std/cld', () => {
    expect(ok('f9' /* stc */).arith).toBe(CF);
    expect(ok('f8' /* clc */, { flags: BASE | CF | ZF }).arith).toBe(ZF);
    expect(ok('f5' /* cmc */, { flags: BASE | CF }).arith).toBe(0);
    expect(ok('fd' /* std */).arith).toBe(DF);
    expect(ok('fc' /* cld */, { flags: BASE | DF }).arith).toBe(0);
  });

  it('leave restores rsp and rbp', () => {
    const rbp = RSP0 - 0x40;
    const res = ok('c9', { regs: { rbp }, mem: { [rbp]: le64(0x1234n) } });
    expect(res.r('rsp')).toBe(BigInt(rbp + 8));
    expect(res.r('rbp')).toBe(0x1234n);
  });

  it('enter builds a frame', () => {
    const res = ok('c8200000' /* enter 0x20, 0 */, { regs: { rbp: 0x55 } });
    expect(res.u64(RSP0 - 8)).toBe(0x55n);
    expect(res.r('rbp')).toBe(BigInt(RSP0 - 8));
    expect(res.r('rsp')).toBe(BigInt(RSP0 - 8 - 0x20));
  });

  it('loop counts rcx down without touching flags; jrcxz branches on rcx = 0', () => {
    const res = ok('48ffc6 e2fb' /* inc rsi; loop .-5 */, { regs: { rcx: 3, rsi: 0 } });
    expect(res.r('rsi')).toBe(3n);
    expect(res.r('rcx')).toBe(0n);
    expect(ok('e302 31c0' /* jrcxz +2; xor eax, eax */, { regs: { rax: 5, rcx: 0 } }).r('rax')).toBe(5n);
    expect(ok('e302 31c0', { regs: { rax: 5, rcx: 1 } }).r('rax')).toBe(0n);
  });
});

describe('shifts and rotates', () => {
  it('a count of 0 keeps the flags but still zero-extends a 32-bit register', () => {
    const res = ok('d3e0' /* shl eax, cl */, { regs: { rax: 0xffffffff_80000001n, rcx: 0x20 }, flags: BASE | SF | ZF | AF | PF | CF | OF });
    expect(res.r('rax')).toBe(0x80000001n);
    expect(res.arith).toBe(SF | ZF | AF | PF | CF | OF);
    const r64 = ok('48d3e0' /* shl rax, cl */, { regs: { rax: 0xffffffff_80000001n, rcx: 64 }, flags: BASE | CF });
    expect(r64.r('rax')).toBe(0xffffffff_80000001n);
    expect(r64.arith).toBe(CF);
  });

  it('shl by 1, 31 and 63: CF is the last bit out, OF as for a count of 1, AF cleared', () => {
    const s1 = ok('d3e0', { regs: { rax: 0xc0000000, rcx: 1 }, flags: BASE | AF });
    expect(s1.r('rax')).toBe(0x80000000n);
    expect(s1.arith).toBe(CF | PF | SF);
    const s31 = ok('d3e0', { regs: { rax: 3, rcx: 31 } });
    expect(s31.r('rax')).toBe(0x80000000n);
    expect(s31.arith).toBe(CF | PF | SF);
    const s63 = ok('48d3e0', { regs: { rax: 3, rcx: 63 } });
    expect(s63.r('rax')).toBe(1n << 63n);
    expect(s63.arith).toBe(CF | PF | SF);
    // OF for a count > 1 is computed from the original operand's top two bits
    expect(ok('d3e0', { regs: { rax: 0x40000000, rcx: 3 } }).arith).toBe(ZF | PF | OF);
  });

  it('shr: OF = the original sign bit; sar: OF = 0, shifting in copies of the sign', () => {
    const shr = ok('d3e8' /* shr eax, cl */, { regs: { rax: 0x80000001, rcx: 1 } });
    expect(shr.r('rax')).toBe(0x40000000n);
    expect(shr.arith).toBe(CF | PF | OF);
    const sar = ok('48d3f8' /* sar rax, cl */, { regs: { rax: 1n << 63n, rcx: 63 } });
    expect(sar.r('rax')).toBe(U64(-1));
    expect(sar.arith).toBe(SF | PF);
  });

  it('rol/ror change only CF and OF', () => {
    const rol = ok('48d3c0' /* rol rax, cl */, { regs: { rax: 0x8000000000000001n, rcx: 1 }, flags: BASE | ZF | SF | PF });
    expect(rol.r('rax')).toBe(3n);
    expect(rol.arith).toBe(ZF | SF | PF | CF | OF);
    const ror = ok('d3c8' /* ror eax, cl */, { regs: { rax: 0x1f, rcx: 4 } });
    expect(ror.r('rax')).toBe(0xf0000001n);
    expect(ror.arith).toBe(CF | OF);
  });

  it('rol of a register by an immediate other than 1 leaves OF alone', () => {
    expect(ok('c1c004' /* rol eax, 4 */, { regs: { rax: 0xf0000000 }, flags: BASE | OF }).arith).toBe(CF | OF);
    expect(ok('c1c004', { regs: { rax: 0xf0000000 } }).arith).toBe(CF);
  });

  it('rcl/rcr rotate through CF; an 8-bit count of 9 is a no-op', () => {
    const nine = ok('d2d0' /* rcl al, cl */, { regs: { rax: 0x81, rcx: 9 }, flags: BASE | CF });
    expect(nine.r('rax')).toBe(0x81n);
    expect(nine.arith).toBe(CF);
    const one = ok('d2d0', { regs: { rax: 0x81, rcx: 1 }, flags: BASE | CF });
    expect(one.r('rax')).toBe(3n);
    expect(one.arith).toBe(CF | OF);
    const rcr = ok('48d3d8' /* rcr rax, cl */, { regs: { rax: 1, rcx: 1 }, flags: BASE | CF });
    expect(rcr.r('rax')).toBe(1n << 63n);
    expect(rcr.arith).toBe(CF | OF);
  });

  it('shld/shrd', () => {
    const shld = ok('0fa5d0' /* shld eax, edx, cl */, { regs: { rax: 0x12345678, rdx: 0x9abcdef0, rcx: 4 } });
    expect(shld.r('rax')).toBe(0x23456789n);
    expect(shld.arith).toBe(CF);
    const shrd = ok('480fadd0' /* shrd rax, rdx, cl */, { regs: { rax: 0x1122334455667788n, rdx: 0xaa, rcx: 8 } });
    expect(shrd.r('rax')).toBe(0xaa11223344556677n);
    expect(shrd.arith).toBe(CF | PF | SF);
  });

  it('BMI2 shifts mask the count and leave the flags', () => {
    const shlx = ok('c4e2f1f7c2' /* shlx rax, rdx, rcx */, { regs: { rdx: 1, rcx: 65 }, flags: BASE | ZF });
    expect(shlx.r('rax')).toBe(2n);
    expect(shlx.arith).toBe(ZF);
    expect(ok('c4e272f7c2' /* sarx eax, edx, ecx */, { regs: { rdx: 0x80000000, rcx: 31 } }).r('rax')).toBe(0xffffffffn);
    expect(ok('c4e3fbf0c208' /* rorx rax, rdx, 8 */, { regs: { rdx: 0x1122334455667788n } }).r('rax')).toBe(0x8811223344556677n);
  });
});

describe('multiply and divide', () => {
  it('mul: CF = OF = high half non-zero; ZF cleared even for a zero product', () => {
    const m = ok('48f7e1' /* mul rcx */, { regs: { rax: -1n, rcx: -1n } });
    expect(m.r('rax')).toBe(1n);
    expect(m.r('rdx')).toBe(0xfffffffffffffffen);
    expect(m.arith).toBe(CF | OF);
    const z = ok('f6e1' /* mul cl */, { regs: { rax: 0xff00, rcx: 7 } });
    expect(z.r('rax')).toBe(0n);
    expect(z.arith).toBe(PF);
  });

  it('imul r64: overflow exactly beyond the signed 64-bit range', () => {
    const over = ok('480fafc1' /* imul rax, rcx */, { regs: { rax: 1n << 32n, rcx: 1n << 31n } });
    expect(over.r('rax')).toBe(1n << 63n);
    expect(over.arith).toBe(CF | OF | SF | PF);
    const fits = ok('480fafc1', { regs: { rax: -(1n << 32n), rcx: 1n << 31n } });
    expect(fits.r('rax')).toBe(1n << 63n);
    expect(fits.arith).toBe(SF | PF);
  });

  it('imul one-operand, three-operand and 16-bit forms', () => {
    const one = ok('48f7e9' /* imul rcx */, { regs: { rax: -1n, rcx: 2 } });
    expect([one.r('rax'), one.r('rdx'), one.arith]).toEqual([U64(-2), U64(-1), SF]);
    const three = ok('6bc1fd' /* imul eax, ecx, -3 */, { regs: { rcx: 0x40000000 } });
    expect([three.r('rax'), three.arith]).toEqual([0x40000000n, CF | OF | PF]);
    const w = ok('660fafca' /* imul cx, dx */, { regs: { rcx: 0xabcd0000_00000100n, rdx: 0x100 } });
    expect([w.r('rcx'), w.arith]).toEqual([0xabcd0000_00000000n, CF | OF | PF]);
  });

  it('div/idiv results; flags unchanged', () => {
    const d = ok('48f7f1' /* div rcx */, { regs: { rdx: 1, rax: 0, rcx: 2 }, flags: BASE | ZF });
    expect([d.r('rax'), d.r('rdx'), d.arith]).toEqual([1n << 63n, 0n, ZF]);
    const big = ok('48f7f1', { regs: { rdx: 0x12345, rax: 0x6789abcdef012345n, rcx: 0xfedcba987654321n } });
    const n = (0x12345n << 64n) | 0x6789abcdef012345n;
    expect([big.r('rax'), big.r('rdx')]).toEqual([n / 0xfedcba987654321n, n % 0xfedcba987654321n]);
    const sd = ok('48f7f9' /* idiv rcx */, { regs: { rdx: -1n, rax: -7n, rcx: 2 } });
    expect([sd.r('rax'), sd.r('rdx')]).toEqual([U64(-3), U64(-1)]);
    expect(ok('f6f1' /* div cl */, { regs: { rax: 0x1234, rcx: 0x56 } }).r('rax')).toBe(0x1036n);
    const d32 = ok('f7f1' /* div ecx */, { regs: { rdx: 0xfffffffe, rax: 0xffffffff, rcx: 0xffffffff } });
    expect([d32.r('rax'), d32.r('rdx')]).toEqual([0xffffffffn, 0xfffffffen]);
  });

  it.each([
    ['div rcx by zero', '48f7f1', { rdx: 0, rax: 1, rcx: 0 }],
    ['div rcx overflow', '48f7f1', { rdx: 5, rax: 0, rcx: 5 }],
    ['div ecx by zero', 'f7f1', { rdx: 0, rax: 1, rcx: 0 }],
    ['idiv ecx: -2^31 / -1', 'f7f9', { rdx: 0xffffffff, rax: 0x80000000, rcx: -1n }],
    ['idiv rcx: -2^63 / -1', '48f7f9', { rdx: -1n, rax: 1n << 63n, rcx: -1n }],
    ['idiv cl: -128 / -1', 'f6f9', { rax: 0xff80, rcx: 0xff }],
  ] as const)('%s raises #DE (SIGFPE) at the divide, registers untouched', (_name, hex, regs) => {
    const res = run(hex, { regs });
    const r = fault(res);
    expect([r.signal, r.vector, r.rip]).toEqual(['SIGFPE', 0, `0x${CODE.toString(16)}`]);
    expect(res.r('rax')).toBe(U64(regs.rax));
  });

  it('mulx: unsigned rdx × src, high half to the first operand, no flags', () => {
    const res = ok('c4e2e3f6c1' /* mulx rax, rbx, rcx */, { regs: { rdx: -1n, rcx: 2 }, flags: BASE | ZF });
    expect([res.r('rax'), res.r('rbx'), res.arith]).toEqual([1n, 0xfffffffffffffffen, ZF]);
  });
});

describe('bit instructions', () => {
  it('bt with a register offset addresses the bit string, negative offsets too', () => {
    const res = ok('0fa30b' /* bt [rbx], ecx */, { regs: { rbx: DATA + 0x100, rcx: -1n }, mem: { [DATA + 0xff]: [0x80] } });
    expect(res.arith & CF).toBe(CF);
    const bts = ok('480fab0b' /* bts [rbx], rcx */, { regs: { rbx: DATA + 0x100, rcx: 200 } });
    expect(bts.u8(DATA + 0x100 + 25)).toBe(1);
    expect(bts.arith & CF).toBe(0);
  });

  it('btr r32 with an immediate: CF = old bit, other flags kept, upper half cleared', () => {
    const res = ok('0fbaf005' /* btr eax, 5 */, { regs: { rax: -1n }, flags: BASE | ZF | OF });
    expect(res.r('rax')).toBe(0xffffffdfn);
    expect(res.arith).toBe(CF | ZF | OF);
  });

  it('bsf/bsr: a zero source leaves the destination (all 64 bits) and sets ZF and PF', () => {
    const zero = ok('0fbcc1' /* bsf eax, ecx */, { regs: { rax: 0x123456789abcdef0n, rcx: 0 }, flags: BASE | CF | SF });
    expect(zero.r('rax')).toBe(0x123456789abcdef0n);
    expect(zero.arith).toBe(ZF | PF);
    const bsf = ok('0fbcc1', { regs: { rcx: 0x80 }, flags: BASE | CF | SF });
    expect([bsf.r('rax'), bsf.arith]).toEqual([7n, 0]);
    const bsr = ok('480fbdc1' /* bsr rax, rcx */, { regs: { rcx: 1n << 40n } });
    expect([bsr.r('rax'), bsr.arith]).toEqual([40n, PF]);
  });

  it('tzcnt/lzcnt/popcnt flags', () => {
    const tz = ok('f30fbcc1' /* tzcnt eax, ecx */, { regs: { rcx: 0 }, flags: BASE | ZF | SF });
    expect([tz.r('rax'), tz.arith]).toEqual([32n, CF]);
    const lz = ok('f3480fbdc1' /* lzcnt rax, rcx */, { regs: { rcx: 1n << 63n } });
    expect([lz.r('rax'), lz.arith]).toEqual([0n, ZF]);
    const pop = ok('f3480fb8c1' /* popcnt rax, rcx */, { regs: { rcx: 0xff00ff00ff00ff00n }, flags: BASE | CF | OF });
    expect([pop.r('rax'), pop.arith]).toEqual([32n, 0]);
    expect(ok('f3480fb8c1', { regs: { rcx: 0 } }).arith).toBe(ZF);
  });

  it('BMI1: andn, bextr, blsi, blsmsk, blsr', () => {
    expect(ok('c4e2f0f2c2' /* andn rax, rcx, rdx */, { regs: { rcx: 0xf0f0, rdx: 0xffff } }).r('rax')).toBe(0x0f0fn);
    expect(ok('c4e268f7c1' /* bextr eax, ecx, edx */, { regs: { rcx: 0x12345678, rdx: 0x0804 } }).r('rax')).toBe(0x67n);
    const blsi = ok('c4e2f8f3d9' /* blsi rax, rcx */, { regs: { rcx: 0x50 } });
    expect([blsi.r('rax'), blsi.arith]).toEqual([0x10n, CF]);
    const msk = ok('c4e278f3d1' /* blsmsk eax, ecx */, { regs: { rcx: 0 } });
    expect([msk.r('rax'), msk.arith]).toEqual([0xffffffffn, CF | SF]);
    const blsr = ok('c4e2f8f3c9' /* blsr rax, rcx */, { regs: { rcx: 8 } });
    expect([blsr.r('rax'), blsr.arith]).toEqual([0n, ZF]);
  });

  it('BMI2: bzhi, pdep, pext', () => {
    const all = ok('c4e2e8f5c1' /* bzhi rax, rcx, rdx */, { regs: { rcx: -1n, rdx: 70 } });
    expect([all.r('rax'), all.arith]).toEqual([U64(-1), CF | SF]);
    expect(ok('c4e2e8f5c1', { regs: { rcx: -1n, rdx: 4 } }).r('rax')).toBe(0xfn);
    expect(ok('c4e2f3f5c2' /* pdep rax, rcx, rdx */, { regs: { rcx: 0b101, rdx: 0x00f0000000000000n } }).r('rax')).toBe(
      0x0050000000000000n,
    );
    expect(ok('c4e2f2f5c2' /* pext rax, rcx, rdx */, { regs: { rcx: 0xff00000000000001n, rdx: 0x8000000000000001n } }).r('rax')).toBe(3n);
  });
});

describe('string instructions', () => {
  it('rep movsb onto an overlapping destination repeats the first byte (byte-by-byte semantics)', () => {
    const res = ok('f3a4' /* rep movsb */, { regs: { rsi: DATA, rdi: DATA + 1, rcx: 10 }, mem: { [DATA]: [0xaa] } });
    expect(res.bytes(DATA, 12)).toEqual([...new Array(11).fill(0xaa), 0]);
    expect([res.r('rsi'), res.r('rdi'), res.r('rcx')]).toEqual([BigInt(DATA + 10), BigInt(DATA + 11), 0n]);
  });

  it('rep movsq copies across a page boundary', () => {
    const src = Array.from({ length: 64 }, (_, i) => i + 1);
    const res = ok('f348a5' /* rep movsq */, { regs: { rsi: DATA + 0x800, rdi: DATA + 0xfe4, rcx: 8 }, mem: { [DATA + 0x800]: src } });
    expect(res.bytes(DATA + 0xfe4, 64)).toEqual(src);
    expect(res.r('rcx')).toBe(0n);
  });

  it('rep stosq and rep stosb', () => {
    const q = ok('f348ab' /* rep stosq */, { regs: { rdi: DATA + 8, rcx: 3, rax: 0x1122334455667788n } });
    expect([q.u64(DATA + 8), q.u64(DATA + 24), q.u64(DATA + 32), q.r('rdi')]).toEqual([
      0x1122334455667788n, 0x1122334455667788n, 0n, BigInt(DATA + 32),
    ]);
    const none = ok('f3aa' /* rep stosb */, { regs: { rdi: DATA, rcx: 0, rax: 0x55 } });
    expect([none.u8(DATA), none.r('rdi')]).toEqual([0, BigInt(DATA)]);
  });

  it('rep movsb faulting at the first missing byte leaves rcx/rsi/rdi at that element', () => {
    const res = run('f3a4', { regs: { rsi: DATA, rdi: DATA_END - 4, rcx: 10 }, mem: { [DATA]: [1, 2, 3, 4, 5] } });
    const r = fault(res);
    expect([r.signal, r.errorCode, r.faultAddress, r.rip]).toEqual(['SIGSEGV', 6, `0x${DATA_END.toString(16)}`, `0x${CODE.toString(16)}`]);
    expect([res.r('rcx'), res.r('rsi'), res.r('rdi')]).toEqual([6n, BigInt(DATA + 4), BigInt(DATA_END)]);
    expect(res.bytes(DATA_END - 4, 4)).toEqual([1, 2, 3, 4]);
  });

  it('repe cmpsb stops after the first difference with its flags', () => {
    const res = ok('f3a6' /* repe cmpsb */, {
      regs: { rsi: DATA, rdi: DATA + 0x100, rcx: 6 },
      mem: { [DATA]: Buffer.from('abcdef'), [DATA + 0x100]: Buffer.from('abcxef') },
    });
    expect([res.r('rcx'), res.r('rsi'), res.r('rdi')]).toEqual([2n, BigInt(DATA + 4), BigInt(DATA + 0x104)]);
    // 'd' - 'x' = 0x64 - 0x78
    expect(res.arith).toBe(CF | SF | AF);
  });

  it('repne scasb finds the terminator (strlen)', () => {
    const res = ok('f2ae' /* repne scasb */, { regs: { rdi: DATA, rcx: -1n, rax: 0 }, mem: { [DATA]: Buffer.from('hello\0') } });
    expect([res.r('rcx'), res.r('rdi'), res.arith & ZF]).toEqual([U64(-7), BigInt(DATA + 6), ZF]);
  });

  it('DF = 1 walks down', () => {
    const res = ok('fd ad' /* std; lodsd */, { regs: { rsi: DATA + 8 }, mem: { [DATA + 8]: [0x78, 0x56, 0x34, 0x12] } });
    expect([res.r('rax'), res.r('rsi')]).toEqual([0x12345678n, BigInt(DATA + 4)]);
  });

  it('a fault part-way through repe cmpsd leaves the flags as they were', () => {
    const res = run('f3a7' /* repe cmpsd */, { regs: { rsi: DATA_END - 8, rdi: DATA, rcx: 10 }, flags: BASE });
    expect(fault(res).faultAddress).toBe(`0x${DATA_END.toString(16)}`);
    expect([res.r('rcx'), res.arith]).toEqual([8n, 0]);
  });

  it('fs override on the source', () => {
    const res = ok('64ac' /* lodsb al, fs:[rsi] */, { regs: { rsi: 0x10 }, fsBase: BigInt(DATA), mem: { [DATA + 0x10]: [0x5a] } });
    expect([res.r('rax') & 0xffn, res.r('rsi')]).toEqual([0x5an, 0x11n]);
  });
});

describe('system and miscellaneous', () => {
  it('cpuid answers from the table, zero-extended', () => {
    const res = ok('0fa2', { regs: { rax: 0xffffffff_00000000n, rbx: -1n, rcx: -1n, rdx: -1n } });
    const str = (v: bigint) => Buffer.from(new Uint32Array([Number(v)]).buffer).toString('latin1');
    expect(res.r('rax')).toBe(1n);
    expect(str(res.r('rbx')) + str(res.r('rdx')) + str(res.r('rcx'))).toBe('GenuineIntel');
  });

  it('rdtsc counts instructions retired (at block granularity)', () => {
    // nop; nop; nop; jmp +0; rdtsc
    const res = ok('90 90 90 eb00 0f31');
    expect([res.r('rax'), res.r('rdx')]).toEqual([4n, 0n]);
  });

  it('xgetbv: #UD without OSXSAVE in CPUID, XCR0 with it', () => {
    expect(fault(run('0f01d0', { regs: { rcx: 0 } })).signal).toBe('SIGILL');
    const cpuid: CpuidEntry[] = [
      { leaf: 0, subleaf: 0, eax: 1, ebx: 0, ecx: 0, edx: 0 },
      { leaf: 1, subleaf: 0, eax: 0, ebx: 0, ecx: 1 << 27, edx: 0 },
    ];
    const res = ok('0f01d0', { regs: { rcx: 0, rax: -1n, rdx: -1n }, cpuid });
    expect([res.r('rax'), res.r('rdx')]).toEqual([7n, 0n]);
  });

  it('int3 traps with rip after it (SIGTRAP)', () => {
    const res = run('90 cc 90');
    const r = fault(res);
    expect([r.signal, r.vector, r.rip]).toEqual(['SIGTRAP', 3, `0x${(CODE + 2).toString(16)}`]);
    expect(res.cpu.instructions).toBe(2);
  });

  it('int 0x80 is #GP with the IDT error code (SIGSEGV); ud1 is #UD', () => {
    const r = fault(run('cd80'));
    expect([r.signal, r.vector, r.errorCode]).toEqual(['SIGSEGV', 13, 0x402]);
    const u = fault(run('90 0fb9c1'));
    expect([u.signal, u.rip]).toEqual(['SIGILL', `0x${(CODE + 1).toString(16)}`]);
  });

  it('an RMW instruction on a missing page reports a write fault', () => {
    const r = fault(run('0118' /* add [rax], ebx */, { regs: { rax: DATA_END } }));
    expect([r.errorCode, r.access]).toEqual([6, 'write, not present']);
  });

  it('rdrand: CF = 1 and a reproducible sequence', () => {
    const a = ok('480fc7f0 480fc7f1' /* rdrand rax; rdrand rcx */);
    const b = ok('480fc7f0 480fc7f1');
    expect(a.arith).toBe(CF);
    expect(a.r('rax')).not.toBe(a.r('rcx'));
    expect([b.r('rax'), b.r('rcx')]).toEqual([a.r('rax'), a.r('rcx')]);
  });

  it('cmpxchg8b/16b: equal stores rcx:rbx; 16b needs 16-byte alignment', () => {
    const eq = ok('0fc70f' /* cmpxchg8b [rdi] */, {
      regs: { rdi: DATA, rbx: 0x33333333, rcx: 0x44444444, rax: 0x11111111, rdx: 0x22222222 },
      mem: { [DATA]: le64(0x2222222211111111n) },
    });
    expect([eq.u64(DATA), eq.arith & ZF]).toEqual([0x4444444433333333n, ZF]);
    expect(fault(run('480fc70f' /* cmpxchg16b [rdi] */, { regs: { rdi: DATA + 8 } })).vector).toBe(13);
  });

  it('crc32 accumulates CRC-32C', () => {
    // crc32 eax, byte [rsi] over "123456789" from ~0, then not eax: the CRC-32C check value
    const loop = 'f20f38f006 48ffc6 48ffc9 75f3 f7d0'; // crc32 eax, [rsi]; inc rsi; dec rcx; jnz; not eax
    const res = ok(loop, { regs: { rax: 0xffffffff, rsi: DATA, rcx: 9 }, mem: { [DATA]: Buffer.from('123456789') } });
    expect(res.r('rax')).toBe(0xe3069283n);
  });
});
