/**
 * The KVM ABI without KVM: struct layouts and ioctl numbers against <linux/kvm.h> (hard-coded
 * header values always; every declared field through a compiled C program when gcc and the
 * headers exist), codec round trips, and kvm_run exit decoding.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ABI_STRUCTS,
  decodeKvmCpuid2,
  decodeKvmMsrEntries,
  decodeXsaveLegacy,
  encodeKvmCpuid2,
  encodeKvmMsrs,
  encodeXsaveLegacy,
  KVM_CPUID2_LAYOUT,
  KVM_CPUID_ENTRY2_LAYOUT,
  KVM_DTABLE_LAYOUT,
  KVM_FPU_CODEC,
  KVM_FPU_LAYOUT,
  KVM_GUEST_DEBUG_CODEC,
  KVM_GUEST_DEBUG_LAYOUT,
  KVM_MSR_ENTRY_LAYOUT,
  KVM_MSRS_LAYOUT,
  KVM_REG_NAMES,
  KVM_REGS_CODEC,
  KVM_REGS_LAYOUT,
  KVM_RUN_LAYOUT,
  KVM_SEGMENT_CODEC,
  KVM_SEGMENT_LAYOUT,
  KVM_SREGS_CODEC,
  KVM_SREGS_LAYOUT,
  KVM_USERSPACE_MEMORY_REGION_CODEC,
  KVM_USERSPACE_MEMORY_REGION_LAYOUT,
  KVM_VCPU_EVENTS_LAYOUT,
  KVM_XCRS_CODEC,
  KVM_XCRS_LAYOUT,
  KVM_XSAVE_LAYOUT,
  kvmCpuid2Size,
  kvmMsrsSize,
  readSyncReg,
  readSyncSegmentBase,
  readSyncSreg,
  writeSyncReg,
  writeSyncSegmentBase,
  writeSyncSreg,
  XSAVE_AREA_LAYOUT,
  type KvmCpuidEntry2,
  type KvmFpu,
  type KvmRegs,
  type KvmSegment,
  type KvmSregs,
  type XsaveLegacyState,
} from '../../src/kvm/abi.js';
import { InternalError, UserError } from '../../src/errors.js';
import {
  KvmCapabilityError,
  KvmIoctlError,
  KvmUnavailableError,
  KvmUnknownExitError,
} from '../../src/kvm/errors.js';
import { decodeExit, describeExit, ioData } from '../../src/kvm/exits.js';
import { ioctlInt, ioctlPtr } from '../../src/kvm/kvm.js';
import type { Libc } from '../../src/native/libc.js';
import {
  _IO,
  _IOR,
  _IOW,
  _IOWR,
  KVM_API_VERSION,
  KVM_CAP,
  KVM_EXIT,
  KVM_EXIT_IO_IN,
  KVM_EXIT_IO_OUT,
  KVM_INTERNAL_ERROR,
  KVM_IOCTL,
  KVM_MEM_LOG_DIRTY_PAGES,
  KVM_MEM_READONLY,
  KVM_SYNC_X86_EVENTS,
  KVM_SYNC_X86_REGS,
  KVM_SYNC_X86_SREGS,
  KVM_SYSTEM_EVENT,
  KVMIO,
  kvmCapName,
  kvmExitName,
} from '../../src/kvm/ioctls.js';

function buffer(size: number): { bytes: Uint8Array; view: DataView } {
  const bytes = new Uint8Array(size);
  return { bytes, view: new DataView(bytes.buffer) };
}

describe('struct layouts match the values in linux/kvm.h', () => {
  it('kvm_regs is 144 bytes: rax…r15, then rip at 128 and rflags at 136', () => {
    expect(KVM_REGS_LAYOUT.size).toBe(144);
    KVM_REG_NAMES.forEach((name, i) => expect(KVM_REGS_LAYOUT[name]).toBe(8 * i));
    expect(KVM_REGS_LAYOUT.rsp).toBe(48);
    expect(KVM_REGS_LAYOUT.r8).toBe(64);
    expect(KVM_REGS_LAYOUT.rip).toBe(128);
    expect(KVM_REGS_LAYOUT.rflags).toBe(136);
  });

  it('kvm_segment is 24 bytes and kvm_dtable 16', () => {
    expect(KVM_SEGMENT_LAYOUT).toMatchObject({ size: 24, base: 0, limit: 8, selector: 12, type: 14, present: 15, dpl: 16, db: 17, s: 18, l: 19, g: 20, avl: 21, unusable: 22 });
    expect(KVM_DTABLE_LAYOUT).toMatchObject({ size: 16, base: 0, limit: 8 });
  });

  it('kvm_sregs is 312 bytes: 8 segments, gdt/idt, control registers, efer, apic_base, interrupt bitmap', () => {
    expect(KVM_SREGS_LAYOUT).toMatchObject({
      size: 312, cs: 0, ds: 24, es: 48, fs: 72, gs: 96, ss: 120, tr: 144, ldt: 168, gdt: 192, idt: 208,
      cr0: 224, cr2: 232, cr3: 240, cr4: 248, cr8: 256, efer: 264, apicBase: 272, interruptBitmap: 280,
    });
  });

  it('kvm_fpu is 416 bytes with fcw at 128, xmm at 152 and mxcsr at 408', () => {
    expect(KVM_FPU_LAYOUT).toMatchObject({ size: 416, fpr: 0, fcw: 128, fsw: 130, ftwx: 132, lastOpcode: 134, lastIp: 136, lastDp: 144, xmm: 152, mxcsr: 408 });
  });

  it('the variable-length structs: kvm_msrs 8 + 16 per entry, kvm_cpuid2 8 + 40 per entry', () => {
    expect(KVM_MSRS_LAYOUT).toMatchObject({ size: 8, nmsrs: 0, entries: 8 });
    expect(KVM_MSR_ENTRY_LAYOUT).toMatchObject({ size: 16, index: 0, data: 8 });
    expect(kvmMsrsSize(3)).toBe(56);
    expect(KVM_CPUID2_LAYOUT).toMatchObject({ size: 8, nent: 0, entries: 8 });
    expect(KVM_CPUID_ENTRY2_LAYOUT).toMatchObject({ size: 40, function: 0, index: 4, flags: 8, eax: 12, ebx: 16, ecx: 20, edx: 24 });
    expect(kvmCpuid2Size(2)).toBe(88);
  });

  it('kvm_userspace_memory_region is 32 bytes; kvm_xsave 4096; kvm_xcrs 392; kvm_guest_debug 72', () => {
    expect(KVM_USERSPACE_MEMORY_REGION_LAYOUT).toMatchObject({ size: 32, slot: 0, flags: 4, guestPhysAddr: 8, memorySize: 16, userspaceAddr: 24 });
    expect(KVM_XSAVE_LAYOUT.size).toBe(4096);
    expect(KVM_XCRS_LAYOUT).toMatchObject({ size: 392, nrXcrs: 0, xcrs: 8 });
    expect(KVM_GUEST_DEBUG_LAYOUT).toMatchObject({ size: 72, control: 0, debugreg: 8 });
    expect(KVM_VCPU_EVENTS_LAYOUT.size).toBe(64);
  });

  it('kvm_run: header, exit union at 32, sync regs at 288/296/304/448', () => {
    expect(KVM_RUN_LAYOUT).toMatchObject({
      requestInterruptWindow: 0, immediateExit: 1, exitReason: 8, readyForInterruptInjection: 12, ifFlag: 13,
      flags: 14, cr8: 16, apicBase: 24, exit: 32, headerBytes: 32,
      ioDirection: 32, ioSize: 33, ioPort: 34, ioCount: 36, ioDataOffset: 40,
      mmioPhysAddr: 32, mmioData: 40, mmioLen: 48, mmioIsWrite: 52,
      failEntryHardwareReason: 32, failEntryCpu: 40,
      internalSuberror: 32, internalNdata: 36, internalData: 40,
      systemEventType: 32, systemEventNdata: 36, systemEventData: 40,
      kvmValidRegs: 288, kvmDirtyRegs: 296, syncRegs: 304, syncSregs: 448, syncEvents: 760,
    });
    expect(KVM_RUN_LAYOUT.headerBytes).toBe(KVM_RUN_LAYOUT.exit);
  });

  it('the XSAVE image: FXSAVE legacy area, header at 512, AVX upper halves at 576', () => {
    expect(XSAVE_AREA_LAYOUT).toMatchObject({ fcw: 0, fsw: 2, ftw: 4, fop: 6, fip: 8, fdp: 16, mxcsr: 24, mxcsrMask: 28, st: 32, xmm: 160, xstateBv: 512, xcompBv: 520, ymmHi: 576 });
  });

  it('layouts are frozen, and no field overruns its struct', () => {
    for (const spec of ABI_STRUCTS) {
      for (const f of spec.fields) expect(f.offset + f.width, `${spec.layoutName}.${f.key}`).toBeLessThanOrEqual(spec.size);
    }
    expect(Object.isFrozen(KVM_RUN_LAYOUT)).toBe(true);
    expect(() => {
      (KVM_RUN_LAYOUT as { exitReason: number }).exitReason = 0;
    }).toThrow();
  });
});

describe('ioctl numbers', () => {
  it('are built like the kernel macros', () => {
    expect(_IO(KVMIO, 0x80)).toBe(0xae80);
    expect(_IOR(KVMIO, 0x81, 144)).toBe(0x8090ae81);
    expect(_IOW(KVMIO, 0x82, 144)).toBe(0x4090ae82);
    expect(_IOWR(KVMIO, 0x05, 8)).toBe(0xc008ae05);
    expect(() => _IOR(KVMIO, 0, 1 << 14)).toThrow(RangeError);
  });

  it('match the numbers measured on these machines', () => {
    expect(KVM_IOCTL.RUN.request).toBe(0xae80);
    expect(KVM_IOCTL.GET_REGS.request).toBe(0x8090ae81);
    expect(KVM_IOCTL.SET_REGS.request).toBe(0x4090ae82);
    expect(KVM_IOCTL.GET_SREGS.request).toBe(0x8138ae83);
    expect(KVM_IOCTL.SET_SREGS.request).toBe(0x4138ae84);
    expect(KVM_IOCTL.SET_MSRS.request).toBe(0x4008ae89);
    expect(KVM_IOCTL.SET_USER_MEMORY_REGION.request).toBe(0x4020ae46);
    expect(KVM_IOCTL.CREATE_VCPU.request).toBe(0xae41);
    expect(KVM_IOCTL.GET_VCPU_MMAP_SIZE.request).toBe(0xae04);
  });

  it('each entry names itself and the capability it needs', () => {
    for (const [key, io] of Object.entries(KVM_IOCTL)) {
      expect(io.name).toBe(`KVM_${key}`);
      expect(io.capability).toMatch(/^(basic|KVM_CAP_[A-Z0-9_]+)$/);
      if (io.capability !== 'basic') expect(KVM_CAP).toHaveProperty(io.capability.slice('KVM_CAP_'.length));
    }
    expect(kvmCapName(74)).toBe('KVM_CAP_SYNC_REGS');
    expect(kvmCapName(9999)).toBe('KVM_CAP_9999');
    expect(kvmExitName(2)).toBe('KVM_EXIT_IO');
    expect(kvmExitName(999)).toBeUndefined();
  });
});

/** Why the C cross-check cannot run here, or null. */
function cCheckSkipReason(): string | null {
  if (spawnSync('gcc', ['--version']).status !== 0) return 'gcc is not installed';
  for (const h of ['/usr/include/linux/kvm.h', '/usr/include/x86_64-linux-gnu/asm/sigcontext.h']) {
    if (!existsSync(h)) return `${h} is missing (install linux-libc-dev)`;
  }
  return null;
}

const cSkip = cCheckSkipReason();
if (cSkip) console.warn(`skipping the C layout cross-check in kvm-abi.test.ts: ${cSkip}`);

/** Every constant the TS side defines that the header also defines: [C macro, TS value]. */
function constantsToCheck(): [string, number][] {
  const out: [string, number][] = [];
  for (const io of Object.values(KVM_IOCTL)) out.push([io.name, io.request]);
  for (const [name, value] of Object.entries(KVM_CAP)) out.push([`KVM_CAP_${name}`, value]);
  for (const [name, value] of Object.entries(KVM_EXIT)) out.push([`KVM_EXIT_${name}`, value]);
  for (const [name, value] of Object.entries(KVM_INTERNAL_ERROR)) out.push([`KVM_INTERNAL_ERROR_${name}`, value]);
  for (const [name, value] of Object.entries(KVM_SYSTEM_EVENT)) out.push([`KVM_SYSTEM_EVENT_${name}`, value]);
  out.push(
    ['KVM_API_VERSION', KVM_API_VERSION],
    ['KVMIO', KVMIO],
    ['KVM_SYNC_X86_REGS', KVM_SYNC_X86_REGS],
    ['KVM_SYNC_X86_SREGS', KVM_SYNC_X86_SREGS],
    ['KVM_SYNC_X86_EVENTS', KVM_SYNC_X86_EVENTS],
    ['KVM_EXIT_IO_IN', KVM_EXIT_IO_IN],
    ['KVM_EXIT_IO_OUT', KVM_EXIT_IO_OUT],
    ['KVM_MEM_LOG_DIRTY_PAGES', KVM_MEM_LOG_DIRTY_PAGES],
    ['KVM_MEM_READONLY', KVM_MEM_READONLY],
  );
  return out;
}

describe.skipIf(cSkip !== null)('layouts and constants against a C program built with <linux/kvm.h>', () => {
  it('every declared field has the offset and size C gives it, and every struct its sizeof', () => {
    const lines: string[] = [];
    for (const spec of ABI_STRUCTS) {
      lines.push(`  printf("S ${spec.layoutName} %zu\\n", sizeof(${spec.cType}));`);
      for (const f of spec.fields) {
        if (f.cMember === null) continue;
        const size = f.width === 0 ? '(size_t)0' : `sizeof(((${spec.cType} *)0)->${f.cMember})`;
        lines.push(`  printf("F ${spec.layoutName} ${f.key} %zu %zu\\n", offsetof(${spec.cType}, ${f.cMember}), ${size});`);
      }
    }
    for (const [macro] of constantsToCheck()) lines.push(`  printf("C ${macro} %lu\\n", (unsigned long)(${macro}));`);
    const source = [
      '#include <stddef.h>',
      '#include <stdio.h>',
      '#include <linux/kvm.h>',
      '#include <asm/sigcontext.h>',
      'int main(void) {',
      ...lines,
      '  return 0;',
      '}',
      '',
    ].join('\n');
    const dir = mkdtempSync(join(tmpdir(), 'switchsim-kvm-abi-'));
    try {
      writeFileSync(join(dir, 'abi.c'), source);
      execFileSync('gcc', ['-std=gnu11', '-Wall', '-Werror', '-o', join(dir, 'abi'), join(dir, 'abi.c')], { stdio: 'pipe' });
      const out = execFileSync(join(dir, 'abi'), { encoding: 'utf8' });
      const fromC = new Map<string, string>();
      for (const line of out.trim().split('\n')) {
        const [kind, a, b, ...rest] = line.split(' ');
        if (kind === 'S') fromC.set(`S ${a}`, b!);
        else if (kind === 'F') fromC.set(`F ${a}.${b}`, rest.join(' '));
        else fromC.set(`C ${a}`, b!);
      }
      let checked = 0;
      for (const spec of ABI_STRUCTS) {
        expect(fromC.get(`S ${spec.layoutName}`), `sizeof(${spec.cType})`).toBe(String(spec.size));
        for (const f of spec.fields) {
          if (f.cMember === null) continue;
          const [offset, size] = fromC.get(`F ${spec.layoutName}.${f.key}`)!.split(' ');
          expect(Number(offset), `offsetof(${spec.cType}, ${f.cMember})`).toBe(f.offset);
          if (f.width !== 0) expect(Number(size), `sizeof ${spec.cType}.${f.cMember}`).toBe(f.cWidth);
          checked++;
        }
      }
      for (const [macro, value] of constantsToCheck()) {
        expect(Number(fromC.get(`C ${macro}`)), macro).toBe(value);
        checked++;
      }
      console.info(`C cross-check: ${ABI_STRUCTS.length} structs, ${checked} fields and constants compared`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('codecs round-trip', () => {
  const seg = (i: number): KvmSegment => ({
    base: 0x1000n * BigInt(i + 1), limit: 0xfffff - i, selector: 8 * i + 3, type: 11, present: 1, dpl: 3,
    db: i & 1, s: 1, l: (i + 1) & 1, g: 1, avl: 0, unusable: 0,
  });

  it('kvm_regs, written where the layout says', () => {
    const { bytes, view } = buffer(16 + 144);
    const regs = {} as KvmRegs;
    KVM_REG_NAMES.forEach((n, i) => (regs[n] = 0x0123_4567_89ab_cd00n + BigInt(i)));
    regs.rflags = 0xffff_ffff_ffff_ffffn;
    KVM_REGS_CODEC.encode(view, 16, regs);
    expect(KVM_REGS_CODEC.decode(view, 16)).toEqual(regs);
    expect(view.getBigUint64(16 + 128, true)).toBe(regs.rip);
    expect(bytes[16 + 136 + 7]).toBe(0xff);
    expect(bytes.subarray(0, 16).every((b) => b === 0)).toBe(true);
  });

  it('kvm_segment and kvm_sregs', () => {
    const { view } = buffer(312 + 8);
    KVM_SEGMENT_CODEC.encode(view, 4, seg(2));
    expect(KVM_SEGMENT_CODEC.decode(view, 4)).toEqual(seg(2));
    const sregs: KvmSregs = {
      cs: seg(0), ds: seg(1), es: seg(2), fs: seg(3), gs: seg(4), ss: seg(5), tr: seg(6), ldt: seg(7),
      gdt: { base: 0xffff_8000_0000_1000n, limit: 0x37 }, idt: { base: 0xffff_8000_0000_2000n, limit: 0xfff },
      cr0: 0x80010033n, cr2: 0xdead_beefn, cr3: 0x1000n, cr4: 0x620n, cr8: 0n, efer: 0x501n, apicBase: 0xfee00900n,
      interruptBitmap: [1n, 0n, 1n << 63n, 0n],
    };
    KVM_SREGS_CODEC.encode(view, 8, sregs);
    expect(KVM_SREGS_CODEC.decode(view, 8)).toEqual(sregs);
    expect(view.getBigUint64(8 + 264, true)).toBe(0x501n);
  });

  it('kvm_fpu', () => {
    const { view } = buffer(416);
    const fpu: KvmFpu = {
      fpr: Uint8Array.from({ length: 128 }, (_, i) => i), fcw: 0x37f, fsw: 0x3800, ftwx: 0x81, lastOpcode: 0x7ff,
      lastIp: 0x401000n, lastDp: 0x602000n, xmm: Uint8Array.from({ length: 256 }, (_, i) => 255 - i), mxcsr: 0x1f80,
    };
    KVM_FPU_CODEC.encode(view, 0, fpu);
    expect(KVM_FPU_CODEC.decode(view, 0)).toEqual(fpu);
    expect(() => KVM_FPU_CODEC.encode(view, 0, { ...fpu, xmm: new Uint8Array(16) })).toThrow(RangeError);
  });

  it('kvm_msrs and kvm_cpuid2 with their entries', () => {
    const msrs = [{ index: 0xc0000080, data: 0x501n }, { index: 0xc0000100, data: 0x7fff_0000_1000n }];
    const m = buffer(kvmMsrsSize(2));
    encodeKvmMsrs(m.view, 0, msrs);
    expect(m.view.getUint32(KVM_MSRS_LAYOUT.nmsrs, true)).toBe(2);
    expect(decodeKvmMsrEntries(m.view, 0, 2)).toEqual(msrs);

    const leaves: KvmCpuidEntry2[] = [
      { function: 0, index: 0, flags: 0, eax: 0xd, ebx: 0x756e6547, ecx: 0x6c65746e, edx: 0x49656e69 },
      { function: 7, index: 0, flags: 1, eax: 0, ebx: 0xffffffff, ecx: 0, edx: 0x80000000 },
    ];
    const c = buffer(kvmCpuid2Size(2));
    encodeKvmCpuid2(c.view, 0, leaves);
    expect(decodeKvmCpuid2(c.view, 0)).toEqual(leaves);
  });

  it('kvm_userspace_memory_region, kvm_xcrs, kvm_guest_debug', () => {
    const r = buffer(32);
    const region = { slot: 3, flags: 2, guestPhysAddr: 0x1_0000_0000n, memorySize: 0x20_0000n, userspaceAddr: 0x7f00_1234_5000n };
    KVM_USERSPACE_MEMORY_REGION_CODEC.encode(r.view, 0, region);
    expect(KVM_USERSPACE_MEMORY_REGION_CODEC.decode(r.view, 0)).toEqual(region);

    const x = buffer(392);
    KVM_XCRS_CODEC.encode(x.view, 0, [{ xcr: 0, value: 0x207n }]);
    expect(KVM_XCRS_CODEC.decode(x.view, 0)).toEqual([{ xcr: 0, value: 0x207n }]);
    expect(() => KVM_XCRS_CODEC.encode(x.view, 0, Array.from({ length: 17 }, () => ({ xcr: 0, value: 0n })))).toThrow(RangeError);

    const d = buffer(72);
    const dbg = { control: 0x3, debugreg: [1n, 2n, 3n, 4n, 0n, 0n, 0xffff0ff0n, 0x400n] };
    KVM_GUEST_DEBUG_CODEC.encode(d.view, 0, dbg);
    expect(KVM_GUEST_DEBUG_CODEC.decode(d.view, 0)).toEqual(dbg);
  });

  it('x87/SSE state in an XSAVE image sets XSTATE_BV, and init components read as their init values', () => {
    const image = new Uint8Array(4096);
    const fresh = decodeXsaveLegacy(image);
    expect(fresh).toMatchObject({ fcw: 0x37f, fsw: 0, ftw: 0, mxcsr: 0 });
    const state: XsaveLegacyState = {
      fcw: 0x27f, fsw: 0x3800, ftw: 0x80, fop: 0x5d9, fip: 0x401234n, fdp: 0x7ffd0000n, mxcsr: 0x1fa0,
      st: Uint8Array.from({ length: 128 }, (_, i) => i), xmm: Uint8Array.from({ length: 256 }, (_, i) => i ^ 0x5a),
    };
    encodeXsaveLegacy(image, state);
    expect(decodeXsaveLegacy(image)).toEqual(state);
    const view = new DataView(image.buffer);
    expect(view.getBigUint64(XSAVE_AREA_LAYOUT.xstateBv, true)).toBe(3n);
    view.setBigUint64(XSAVE_AREA_LAYOUT.xstateBv, 2n, true); // x87 back in init state
    expect(decodeXsaveLegacy(image)).toMatchObject({ fcw: 0x37f, mxcsr: 0x1fa0, xmm: state.xmm });
  });

  it('sync-regs accessors read and write single registers in kvm_run', () => {
    const { view } = buffer(KVM_RUN_LAYOUT.size);
    writeSyncReg(view, 'rip', 0x401000n);
    writeSyncReg(view, 'rax', 60n);
    writeSyncSreg(view, 'efer', 0x501n);
    writeSyncSegmentBase(view, 'fs', 0x7fff_1000n);
    expect(view.getBigUint64(304 + 128, true)).toBe(0x401000n);
    expect(readSyncReg(view, 'rip')).toBe(0x401000n);
    expect(readSyncReg(view, 'rax')).toBe(60n);
    expect(readSyncSreg(view, 'efer')).toBe(0x501n);
    expect(view.getBigUint64(448 + 264, true)).toBe(0x501n);
    expect(readSyncSegmentBase(view, 'fs')).toBe(0x7fff_1000n);
    expect(KVM_REGS_CODEC.decode(view, KVM_RUN_LAYOUT.syncRegs).rip).toBe(0x401000n);
    expect(KVM_SREGS_CODEC.decode(view, KVM_RUN_LAYOUT.syncSregs).fs.base).toBe(0x7fff_1000n);
  });
});

describe('kvm_run exits decode into a tagged union', () => {
  // A kvm_run mapping is KVM_GET_VCPU_MMAP_SIZE bytes (pages); io data sits past the struct.
  const run = (): DataView => buffer(3 * 4096).view;
  const L = KVM_RUN_LAYOUT;

  it('io: direction, size, port, count and the data at data_offset', () => {
    const v = run();
    v.setUint32(L.exitReason, KVM_EXIT.IO, true);
    v.setUint8(L.ioDirection, KVM_EXIT_IO_OUT);
    v.setUint8(L.ioSize, 1);
    v.setUint16(L.ioPort, 0x3f8, true);
    v.setUint32(L.ioCount, 1, true);
    v.setBigUint64(L.ioDataOffset, 4096n, true);
    v.setUint8(4096, 0x41);
    const exit = decodeExit(v);
    expect(exit).toEqual({ reason: 'io', direction: 'out', size: 1, port: 0x3f8, count: 1, dataOffset: 4096 });
    if (exit.reason !== 'io') throw new Error('not io');
    expect([...ioData(v, exit)]).toEqual([0x41]);
    v.setUint8(L.ioDirection, KVM_EXIT_IO_IN);
    expect(decodeExit(v)).toMatchObject({ direction: 'in' });
  });

  it('mmio: physical address, length, direction, and a live view of the data', () => {
    const v = run();
    v.setUint32(L.exitReason, KVM_EXIT.MMIO, true);
    v.setBigUint64(L.mmioPhysAddr, 0xffff_5a00n, true);
    v.setUint32(L.mmioLen, 4, true);
    v.setUint8(L.mmioIsWrite, 0);
    const exit = decodeExit(v);
    expect(exit).toMatchObject({ reason: 'mmio', physAddr: 0xffff_5a00n, len: 4, isWrite: false });
    if (exit.reason !== 'mmio') throw new Error('not mmio');
    exit.data.set([1, 2, 3, 4]); // answering a read
    expect(v.getUint32(L.mmioData, true)).toBe(0x04030201);
  });

  it('hlt, shutdown, intr and the other payload-free exits', () => {
    const v = run();
    const reasonOf = (n: number): string => {
      v.setUint32(L.exitReason, n, true);
      return decodeExit(v).reason;
    };
    expect(reasonOf(KVM_EXIT.HLT)).toBe('hlt');
    expect(reasonOf(KVM_EXIT.SHUTDOWN)).toBe('shutdown');
    expect(reasonOf(KVM_EXIT.INTR)).toBe('intr');
    expect(reasonOf(KVM_EXIT.IRQ_WINDOW_OPEN)).toBe('irqWindowOpen');
    expect(reasonOf(KVM_EXIT.NMI)).toBe('nmi');
  });

  it('failEntry, internalError (data clamped to ndata), systemEvent, debug, exception, unknown', () => {
    const v = run();
    v.setUint32(L.exitReason, KVM_EXIT.FAIL_ENTRY, true);
    v.setBigUint64(L.failEntryHardwareReason, 0x80000021n, true);
    v.setUint32(L.failEntryCpu, 1, true);
    expect(decodeExit(v)).toEqual({ reason: 'failEntry', hardwareReason: 0x80000021n, cpu: 1 });

    const w = run();
    w.setUint32(L.exitReason, KVM_EXIT.INTERNAL_ERROR, true);
    w.setUint32(L.internalSuberror, KVM_INTERNAL_ERROR.EMULATION, true);
    w.setUint32(L.internalNdata, 2, true);
    w.setBigUint64(L.internalData, 0xaan, true);
    w.setBigUint64(L.internalData + 8, 0xbbn, true);
    w.setBigUint64(L.internalData + 16, 0xccn, true);
    expect(decodeExit(w)).toEqual({ reason: 'internalError', suberror: 1, data: [0xaan, 0xbbn] });
    w.setUint32(L.internalNdata, 1000, true);
    expect((decodeExit(w) as { data: bigint[] }).data).toHaveLength(16);

    const s = run();
    s.setUint32(L.exitReason, KVM_EXIT.SYSTEM_EVENT, true);
    s.setUint32(L.systemEventType, KVM_SYSTEM_EVENT.RESET, true);
    expect(decodeExit(s)).toEqual({ reason: 'systemEvent', type: 2, data: [] });

    const d = run();
    d.setUint32(L.exitReason, KVM_EXIT.DEBUG, true);
    d.setUint32(L.debugException, 1, true);
    d.setBigUint64(L.debugPc, 0x401000n, true);
    d.setBigUint64(L.debugDr6, 0xffff4ff0n, true);
    expect(decodeExit(d)).toEqual({ reason: 'debug', exception: 1, pc: 0x401000n, dr6: 0xffff4ff0n, dr7: 0n });

    const e = run();
    e.setUint32(L.exitReason, KVM_EXIT.EXCEPTION, true);
    e.setUint32(L.exException, 13, true);
    e.setUint32(L.exErrorCode, 0x10, true);
    expect(decodeExit(e)).toEqual({ reason: 'exception', exception: 13, errorCode: 0x10 });

    const u = run();
    u.setBigUint64(L.hwHardwareExitReason, 0x30n, true); // exit_reason 0 = KVM_EXIT_UNKNOWN
    expect(decodeExit(u)).toEqual({ reason: 'unknown', hardwareExitReason: 0x30n });
    expect(describeExit(decodeExit(u))).toBe('unknown hardware exit reason 0x30');
  });

  it('an exit reason switchsim does not handle is a KvmUnknownExitError naming it', () => {
    const v = run();
    v.setUint32(L.exitReason, 999, true);
    expect(() => decodeExit(v)).toThrow(KvmUnknownExitError);
    try {
      decodeExit(v);
    } catch (e) {
      expect((e as KvmUnknownExitError).reason).toBe(999);
      expect((e as KvmUnknownExitError).userFault).toBe(false);
    }
    v.setUint32(L.exitReason, KVM_EXIT.S390_SIEIC, true);
    expect(() => decodeExit(v)).toThrow(/exit reason 13 \(KVM_EXIT_S390_SIEIC\)/);
  });
});

describe('KVM errors', () => {
  it('say what failed and are user or internal faults as appropriate', () => {
    const ioctl = new KvmIoctlError('KVM_SET_USER_MEMORY_REGION', 22, 'slot 1');
    expect(ioctl).toBeInstanceOf(InternalError);
    expect(ioctl.errnoName).toBe('EINVAL');
    expect(ioctl.message).toBe('KVM_SET_USER_MEMORY_REGION failed: EINVAL (errno 22) [slot 1]');
    expect(ioctl.name).toBe('KvmIoctlError');

    const unavailable = new KvmUnavailableError('/dev/kvm', 'does not exist');
    expect(unavailable).toBeInstanceOf(UserError);
    expect(unavailable.message).toMatch(/\/dev\/kvm: does not exist.*the KVM CPU needs \/dev\/kvm/);

    const cap = new KvmCapabilityError('KVM_CAP_SYNC_REGS', 'syscall round trips', 0);
    expect(cap).toBeInstanceOf(UserError);
    expect(cap.message).toMatch(/lacks KVM_CAP_SYNC_REGS/);

    expect(new KvmUnknownExitError(77)).toBeInstanceOf(InternalError);
  });
});

describe('ioctl restarts', () => {
  /** A libc whose ioctls fail with `errnos` in turn, then succeed with 7. */
  function failing(errnos: number[]): { c: Libc; calls: () => number } {
    let n = 0;
    let last = 0;
    const call = () => {
      const e = errnos[n++];
      if (e === undefined) return 7;
      last = e;
      return -1;
    };
    const c = { ioctlInt: call, ioctlPtr: call, errno: () => last } as unknown as Libc;
    return { c, calls: () => n };
  }

  it('restarts an ioctl a signal interrupted (EINTR), and reports any other errno with the ioctl name', () => {
    const { EINTR, EBADF } = os.constants.errno;
    const a = failing([EINTR, EINTR]);
    expect(ioctlInt(a.c, 3, KVM_IOCTL.CREATE_VM, 0n)).toBe(7);
    expect(a.calls()).toBe(3);
    const b = failing([EINTR]);
    expect(ioctlPtr(b.c, 3, KVM_IOCTL.GET_REGS, Buffer.alloc(8))).toBe(7);
    expect(b.calls()).toBe(2);
    const d = failing([EINTR, EBADF]);
    expect(() => ioctlInt(d.c, 3, KVM_IOCTL.CREATE_VCPU, 0n, () => 'vcpu id 0')).toThrow(KvmIoctlError);
    expect(() => ioctlInt(failing([EBADF]).c, 3, KVM_IOCTL.CREATE_VCPU, 0n, () => 'vcpu id 0')).toThrow(/KVM_CREATE_VCPU.*EBADF/);
  });
});
