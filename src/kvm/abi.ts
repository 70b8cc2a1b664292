/**
 * The x86-64 KVM ABI structs, each declared exactly once: a frozen layout (size + byte offset of
 * every field, usable directly on the hot path, e.g. `KVM_RUN_LAYOUT.exitReason`) and a codec
 * (decode from / encode into a DataView at a base offset; u64 fields are bigints).
 *
 * Every field also records its width and its C member designator, so the unit test can compile a
 * C program against <linux/kvm.h> and compare every offset and size (test/unit/kvm-abi.test.ts).
 * Nothing else in switchsim may use raw offsets into these structs.
 *
 * All values are little-endian (x86-64 only).
 */

// ---------------------------------------------------------------------------------------------
// Layout declaration machinery

/** [offset, width in bytes (0 = flexible array member), C member designator (default: the key in
 * snake_case; null = no C counterpart), width of the C member when it differs from `width`]. */
type FieldDecl = readonly [offset: number, width: number, cMember?: string | null, cWidth?: number];

export interface AbiFieldSpec {
  readonly key: string;
  readonly offset: number;
  readonly width: number;
  readonly cMember: string | null;
  readonly cWidth: number;
}

export interface AbiStructSpec {
  /** Name of the layout constant, e.g. 'KVM_REGS_LAYOUT'. */
  readonly layoutName: string;
  /** C type it mirrors, e.g. 'struct kvm_regs'. */
  readonly cType: string;
  readonly size: number;
  readonly fields: readonly AbiFieldSpec[];
}

export type Layout<K extends string> = { readonly size: number } & { readonly [P in K]: number };

const specs: AbiStructSpec[] = [];
/** Every layout declared in this file, with its C counterpart (for the layout test). */
export const ABI_STRUCTS: readonly AbiStructSpec[] = specs;

const snake = (key: string): string => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

function defineLayout<const F extends Record<string, FieldDecl>, const X extends Record<string, number> = Record<never, number>>(
  layoutName: string,
  cType: string,
  size: number,
  fields: F,
  /** Derived sizes that are not C members (e.g. a header length); tested separately. */
  extras?: X,
): Layout<Extract<keyof F, string>> & Readonly<X> {
  const layout: Record<string, number> = { size, ...extras };
  const fieldSpecs: AbiFieldSpec[] = [];
  for (const [key, decl] of Object.entries(fields)) {
    const [offset, width, cMember, cWidth] = decl;
    if (offset + width > size) throw new Error(`${layoutName}.${key} (${offset}+${width}) overruns size ${size}`);
    layout[key] = offset;
    fieldSpecs.push({ key, offset, width, cMember: cMember === undefined ? snake(key) : cMember, cWidth: cWidth ?? width });
  }
  specs.push(Object.freeze({ layoutName, cType, size, fields: Object.freeze(fieldSpecs) }));
  return Object.freeze(layout) as Layout<Extract<keyof F, string>> & Readonly<X>;
}

const U8 = 1;
const U16 = 2;
const U32 = 4;
const U64 = 8;

export interface Codec<T> {
  decode(view: DataView, base: number): T;
  encode(view: DataView, base: number, value: T): void;
}

/** Copies `length` bytes out of the view. */
function readBytes(view: DataView, at: number, length: number): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset + at, length).slice();
}

function writeBytes(view: DataView, at: number, length: number, value: Uint8Array, what: string): void {
  if (value.length !== length) throw new RangeError(`${what}: expected ${length} bytes, got ${value.length}`);
  new Uint8Array(view.buffer, view.byteOffset + at, length).set(value);
}

// ---------------------------------------------------------------------------------------------
// struct kvm_regs (KVM_GET_REGS / KVM_SET_REGS, and kvm_run.s.regs.regs)

export const KVM_REG_NAMES = [
  'rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rsp', 'rbp',
  'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15',
  'rip', 'rflags',
] as const;
export type KvmRegName = (typeof KVM_REG_NAMES)[number];
export type KvmRegs = Record<KvmRegName, bigint>;

export const KVM_REGS_LAYOUT = defineLayout('KVM_REGS_LAYOUT', 'struct kvm_regs', 144, {
  rax: [0, U64], rbx: [8, U64], rcx: [16, U64], rdx: [24, U64],
  rsi: [32, U64], rdi: [40, U64], rsp: [48, U64], rbp: [56, U64],
  r8: [64, U64], r9: [72, U64], r10: [80, U64], r11: [88, U64],
  r12: [96, U64], r13: [104, U64], r14: [112, U64], r15: [120, U64],
  rip: [128, U64], rflags: [136, U64],
});

export const KVM_REGS_CODEC: Codec<KvmRegs> = {
  decode(view, base) {
    const regs = {} as KvmRegs;
    for (const name of KVM_REG_NAMES) regs[name] = view.getBigUint64(base + KVM_REGS_LAYOUT[name], true);
    return regs;
  },
  encode(view, base, regs) {
    for (const name of KVM_REG_NAMES) view.setBigUint64(base + KVM_REGS_LAYOUT[name], regs[name], true);
  },
};

export function zeroRegs(): KvmRegs {
  const regs = {} as KvmRegs;
  for (const name of KVM_REG_NAMES) regs[name] = 0n;
  return regs;
}

// ---------------------------------------------------------------------------------------------
// struct kvm_segment, struct kvm_dtable, struct kvm_sregs

export interface KvmSegment {
  base: bigint;
  limit: number;
  selector: number;
  type: number;
  present: number;
  dpl: number;
  db: number;
  s: number;
  l: number;
  g: number;
  avl: number;
  unusable: number;
}

export const KVM_SEGMENT_LAYOUT = defineLayout('KVM_SEGMENT_LAYOUT', 'struct kvm_segment', 24, {
  base: [0, U64], limit: [8, U32], selector: [12, U16],
  type: [14, U8], present: [15, U8], dpl: [16, U8], db: [17, U8], s: [18, U8], l: [19, U8],
  g: [20, U8], avl: [21, U8], unusable: [22, U8], padding: [23, U8],
});

const SEGMENT_U8_FIELDS = ['type', 'present', 'dpl', 'db', 's', 'l', 'g', 'avl', 'unusable'] as const;

export const KVM_SEGMENT_CODEC: Codec<KvmSegment> = {
  decode(view, base) {
    const L = KVM_SEGMENT_LAYOUT;
    return {
      base: view.getBigUint64(base + L.base, true),
      limit: view.getUint32(base + L.limit, true),
      selector: view.getUint16(base + L.selector, true),
      type: view.getUint8(base + L.type),
      present: view.getUint8(base + L.present),
      dpl: view.getUint8(base + L.dpl),
      db: view.getUint8(base + L.db),
      s: view.getUint8(base + L.s),
      l: view.getUint8(base + L.l),
      g: view.getUint8(base + L.g),
      avl: view.getUint8(base + L.avl),
      unusable: view.getUint8(base + L.unusable),
    };
  },
  encode(view, base, seg) {
    const L = KVM_SEGMENT_LAYOUT;
    view.setBigUint64(base + L.base, seg.base, true);
    view.setUint32(base + L.limit, seg.limit, true);
    view.setUint16(base + L.selector, seg.selector, true);
    for (const f of SEGMENT_U8_FIELDS) view.setUint8(base + L[f], seg[f]);
    view.setUint8(base + L.padding, 0);
  },
};

export interface KvmDtable {
  base: bigint;
  limit: number;
}

export const KVM_DTABLE_LAYOUT = defineLayout('KVM_DTABLE_LAYOUT', 'struct kvm_dtable', 16, {
  base: [0, U64], limit: [8, U16], padding: [10, 6],
});

export const KVM_DTABLE_CODEC: Codec<KvmDtable> = {
  decode(view, base) {
    return {
      base: view.getBigUint64(base + KVM_DTABLE_LAYOUT.base, true),
      limit: view.getUint16(base + KVM_DTABLE_LAYOUT.limit, true),
    };
  },
  encode(view, base, dt) {
    view.setBigUint64(base + KVM_DTABLE_LAYOUT.base, dt.base, true);
    view.setUint16(base + KVM_DTABLE_LAYOUT.limit, dt.limit, true);
    for (let i = 0; i < 6; i++) view.setUint8(base + KVM_DTABLE_LAYOUT.padding + i, 0);
  },
};

export const KVM_SEGMENT_NAMES = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'tr', 'ldt'] as const;
export type KvmSegmentName = (typeof KVM_SEGMENT_NAMES)[number];
export const KVM_SREG_U64_NAMES = ['cr0', 'cr2', 'cr3', 'cr4', 'cr8', 'efer', 'apicBase'] as const;
export type KvmSregU64Name = (typeof KVM_SREG_U64_NAMES)[number];
/** KVM_NR_INTERRUPTS (256) bits. */
export const KVM_INTERRUPT_BITMAP_WORDS = 4;

export type KvmSregs = Record<KvmSegmentName, KvmSegment> &
  Record<'gdt' | 'idt', KvmDtable> &
  Record<KvmSregU64Name, bigint> & {
    /** 4 words: the pending external interrupt (at most one bit set). */
    interruptBitmap: bigint[];
  };

export const KVM_SREGS_LAYOUT = defineLayout('KVM_SREGS_LAYOUT', 'struct kvm_sregs', 312, {
  cs: [0, 24], ds: [24, 24], es: [48, 24], fs: [72, 24], gs: [96, 24], ss: [120, 24],
  tr: [144, 24], ldt: [168, 24],
  gdt: [192, 16], idt: [208, 16],
  cr0: [224, U64], cr2: [232, U64], cr3: [240, U64], cr4: [248, U64], cr8: [256, U64],
  efer: [264, U64], apicBase: [272, U64],
  interruptBitmap: [280, 32],
});

export const KVM_SREGS_CODEC: Codec<KvmSregs> = {
  decode(view, base) {
    const L = KVM_SREGS_LAYOUT;
    const sregs = {} as KvmSregs;
    for (const n of KVM_SEGMENT_NAMES) sregs[n] = KVM_SEGMENT_CODEC.decode(view, base + L[n]);
    sregs.gdt = KVM_DTABLE_CODEC.decode(view, base + L.gdt);
    sregs.idt = KVM_DTABLE_CODEC.decode(view, base + L.idt);
    for (const n of KVM_SREG_U64_NAMES) sregs[n] = view.getBigUint64(base + L[n], true);
    sregs.interruptBitmap = [];
    for (let i = 0; i < KVM_INTERRUPT_BITMAP_WORDS; i++) {
      sregs.interruptBitmap.push(view.getBigUint64(base + L.interruptBitmap + 8 * i, true));
    }
    return sregs;
  },
  encode(view, base, sregs) {
    const L = KVM_SREGS_LAYOUT;
    for (const n of KVM_SEGMENT_NAMES) KVM_SEGMENT_CODEC.encode(view, base + L[n], sregs[n]);
    KVM_DTABLE_CODEC.encode(view, base + L.gdt, sregs.gdt);
    KVM_DTABLE_CODEC.encode(view, base + L.idt, sregs.idt);
    for (const n of KVM_SREG_U64_NAMES) view.setBigUint64(base + L[n], sregs[n], true);
    for (let i = 0; i < KVM_INTERRUPT_BITMAP_WORDS; i++) {
      view.setBigUint64(base + L.interruptBitmap + 8 * i, sregs.interruptBitmap[i] ?? 0n, true);
    }
  },
};

// ---------------------------------------------------------------------------------------------
// struct kvm_fpu (KVM_GET_FPU / KVM_SET_FPU): the FXSAVE image, rearranged

export interface KvmFpu {
  /** st0–st7 (or mm0–mm7), 16 bytes each (10 used), 128 bytes. */
  fpr: Uint8Array;
  fcw: number;
  fsw: number;
  /** Abridged (FXSAVE) tag word: bit i set = physical register i valid. */
  ftwx: number;
  lastOpcode: number;
  lastIp: bigint;
  lastDp: bigint;
  /** xmm0–xmm15, 16 bytes each, 256 bytes. */
  xmm: Uint8Array;
  mxcsr: number;
}

export const KVM_FPU_LAYOUT = defineLayout('KVM_FPU_LAYOUT', 'struct kvm_fpu', 416, {
  fpr: [0, 128], fcw: [128, U16], fsw: [130, U16], ftwx: [132, U8], pad1: [133, U8],
  lastOpcode: [134, U16], lastIp: [136, U64], lastDp: [144, U64],
  xmm: [152, 256], mxcsr: [408, U32], pad2: [412, U32],
});

export const KVM_FPU_CODEC: Codec<KvmFpu> = {
  decode(view, base) {
    const L = KVM_FPU_LAYOUT;
    return {
      fpr: readBytes(view, base + L.fpr, 128),
      fcw: view.getUint16(base + L.fcw, true),
      fsw: view.getUint16(base + L.fsw, true),
      ftwx: view.getUint8(base + L.ftwx),
      lastOpcode: view.getUint16(base + L.lastOpcode, true),
      lastIp: view.getBigUint64(base + L.lastIp, true),
      lastDp: view.getBigUint64(base + L.lastDp, true),
      xmm: readBytes(view, base + L.xmm, 256),
      mxcsr: view.getUint32(base + L.mxcsr, true),
    };
  },
  encode(view, base, fpu) {
    const L = KVM_FPU_LAYOUT;
    writeBytes(view, base + L.fpr, 128, fpu.fpr, 'kvm_fpu.fpr');
    view.setUint16(base + L.fcw, fpu.fcw, true);
    view.setUint16(base + L.fsw, fpu.fsw, true);
    view.setUint8(base + L.ftwx, fpu.ftwx);
    view.setUint8(base + L.pad1, 0);
    view.setUint16(base + L.lastOpcode, fpu.lastOpcode, true);
    view.setBigUint64(base + L.lastIp, fpu.lastIp, true);
    view.setBigUint64(base + L.lastDp, fpu.lastDp, true);
    writeBytes(view, base + L.xmm, 256, fpu.xmm, 'kvm_fpu.xmm');
    view.setUint32(base + L.mxcsr, fpu.mxcsr, true);
    view.setUint32(base + L.pad2, 0, true);
  },
};

// ---------------------------------------------------------------------------------------------
// struct kvm_msrs + struct kvm_msr_entry (KVM_GET_MSRS / KVM_SET_MSRS)

export interface KvmMsrEntry {
  index: number;
  data: bigint;
}

/** Header; `entries` (flexible) follows. */
export const KVM_MSRS_LAYOUT = defineLayout('KVM_MSRS_LAYOUT', 'struct kvm_msrs', 8, {
  nmsrs: [0, U32], pad: [4, U32], entries: [8, 0],
});

export const KVM_MSR_ENTRY_LAYOUT = defineLayout('KVM_MSR_ENTRY_LAYOUT', 'struct kvm_msr_entry', 16, {
  index: [0, U32], reserved: [4, U32], data: [8, U64],
});

export const KVM_MSR_ENTRY_CODEC: Codec<KvmMsrEntry> = {
  decode(view, base) {
    return {
      index: view.getUint32(base + KVM_MSR_ENTRY_LAYOUT.index, true),
      data: view.getBigUint64(base + KVM_MSR_ENTRY_LAYOUT.data, true),
    };
  },
  encode(view, base, e) {
    view.setUint32(base + KVM_MSR_ENTRY_LAYOUT.index, e.index, true);
    view.setUint32(base + KVM_MSR_ENTRY_LAYOUT.reserved, 0, true);
    view.setBigUint64(base + KVM_MSR_ENTRY_LAYOUT.data, e.data, true);
  },
};

/** Byte size of a kvm_msrs with `n` entries. */
export const kvmMsrsSize = (n: number): number => KVM_MSRS_LAYOUT.size + n * KVM_MSR_ENTRY_LAYOUT.size;

/** Writes a whole kvm_msrs (header + entries) at `base`. */
export function encodeKvmMsrs(view: DataView, base: number, entries: readonly KvmMsrEntry[]): void {
  view.setUint32(base + KVM_MSRS_LAYOUT.nmsrs, entries.length, true);
  view.setUint32(base + KVM_MSRS_LAYOUT.pad, 0, true);
  entries.forEach((e, i) => KVM_MSR_ENTRY_CODEC.encode(view, base + KVM_MSRS_LAYOUT.entries + i * KVM_MSR_ENTRY_LAYOUT.size, e));
}

/** Reads the first `count` entries of a kvm_msrs at `base`. */
export function decodeKvmMsrEntries(view: DataView, base: number, count: number): KvmMsrEntry[] {
  const out: KvmMsrEntry[] = [];
  for (let i = 0; i < count; i++) {
    out.push(KVM_MSR_ENTRY_CODEC.decode(view, base + KVM_MSRS_LAYOUT.entries + i * KVM_MSR_ENTRY_LAYOUT.size));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// struct kvm_userspace_memory_region (KVM_SET_USER_MEMORY_REGION)

export interface KvmUserspaceMemoryRegion {
  slot: number;
  flags: number;
  guestPhysAddr: bigint;
  memorySize: bigint;
  userspaceAddr: bigint;
}

export const KVM_USERSPACE_MEMORY_REGION_LAYOUT = defineLayout(
  'KVM_USERSPACE_MEMORY_REGION_LAYOUT', 'struct kvm_userspace_memory_region', 32, {
    slot: [0, U32], flags: [4, U32], guestPhysAddr: [8, U64], memorySize: [16, U64], userspaceAddr: [24, U64],
  });

export const KVM_USERSPACE_MEMORY_REGION_CODEC: Codec<KvmUserspaceMemoryRegion> = {
  decode(view, base) {
    const L = KVM_USERSPACE_MEMORY_REGION_LAYOUT;
    return {
      slot: view.getUint32(base + L.slot, true),
      flags: view.getUint32(base + L.flags, true),
      guestPhysAddr: view.getBigUint64(base + L.guestPhysAddr, true),
      memorySize: view.getBigUint64(base + L.memorySize, true),
      userspaceAddr: view.getBigUint64(base + L.userspaceAddr, true),
    };
  },
  encode(view, base, r) {
    const L = KVM_USERSPACE_MEMORY_REGION_LAYOUT;
    view.setUint32(base + L.slot, r.slot, true);
    view.setUint32(base + L.flags, r.flags, true);
    view.setBigUint64(base + L.guestPhysAddr, r.guestPhysAddr, true);
    view.setBigUint64(base + L.memorySize, r.memorySize, true);
    view.setBigUint64(base + L.userspaceAddr, r.userspaceAddr, true);
  },
};

// ---------------------------------------------------------------------------------------------
// struct kvm_cpuid2 + struct kvm_cpuid_entry2 (KVM_GET_SUPPORTED_CPUID / KVM_SET_CPUID2)

export interface KvmCpuidEntry2 {
  function: number;
  index: number;
  /** KVM_CPUID_FLAG_*: SIGNIFCANT_INDEX = 1 (`index` matters). */
  flags: number;
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

export const KVM_CPUID_FLAG_SIGNIFICANT_INDEX = 1;

/** Header; `entries` (flexible) follows. */
export const KVM_CPUID2_LAYOUT = defineLayout('KVM_CPUID2_LAYOUT', 'struct kvm_cpuid2', 8, {
  nent: [0, U32], padding: [4, U32], entries: [8, 0],
});

export const KVM_CPUID_ENTRY2_LAYOUT = defineLayout('KVM_CPUID_ENTRY2_LAYOUT', 'struct kvm_cpuid_entry2', 40, {
  function: [0, U32], index: [4, U32], flags: [8, U32],
  eax: [12, U32], ebx: [16, U32], ecx: [20, U32], edx: [24, U32], padding: [28, 12],
});

const CPUID_U32_FIELDS = ['function', 'index', 'flags', 'eax', 'ebx', 'ecx', 'edx'] as const;

export const KVM_CPUID_ENTRY2_CODEC: Codec<KvmCpuidEntry2> = {
  decode(view, base) {
    const e = {} as KvmCpuidEntry2;
    for (const f of CPUID_U32_FIELDS) e[f] = view.getUint32(base + KVM_CPUID_ENTRY2_LAYOUT[f], true);
    return e;
  },
  encode(view, base, e) {
    for (const f of CPUID_U32_FIELDS) view.setUint32(base + KVM_CPUID_ENTRY2_LAYOUT[f], e[f] >>> 0, true);
    for (let i = 0; i < 12; i++) view.setUint8(base + KVM_CPUID_ENTRY2_LAYOUT.padding + i, 0);
  },
};

export const kvmCpuid2Size = (n: number): number => KVM_CPUID2_LAYOUT.size + n * KVM_CPUID_ENTRY2_LAYOUT.size;

export function encodeKvmCpuid2(view: DataView, base: number, entries: readonly KvmCpuidEntry2[]): void {
  view.setUint32(base + KVM_CPUID2_LAYOUT.nent, entries.length, true);
  view.setUint32(base + KVM_CPUID2_LAYOUT.padding, 0, true);
  entries.forEach((e, i) =>
    KVM_CPUID_ENTRY2_CODEC.encode(view, base + KVM_CPUID2_LAYOUT.entries + i * KVM_CPUID_ENTRY2_LAYOUT.size, e));
}

/** Decodes a whole kvm_cpuid2 (nent from its header). */
export function decodeKvmCpuid2(view: DataView, base: number): KvmCpuidEntry2[] {
  const n = view.getUint32(base + KVM_CPUID2_LAYOUT.nent, true);
  const out: KvmCpuidEntry2[] = [];
  for (let i = 0; i < n; i++) {
    out.push(KVM_CPUID_ENTRY2_CODEC.decode(view, base + KVM_CPUID2_LAYOUT.entries + i * KVM_CPUID_ENTRY2_LAYOUT.size));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// struct kvm_xsave (KVM_GET_XSAVE / KVM_SET_XSAVE) and the XSAVE image inside it

/** `region` is the host's XSAVE image in standard (non-compacted) format, 4096 bytes. */
export const KVM_XSAVE_LAYOUT = defineLayout('KVM_XSAVE_LAYOUT', 'struct kvm_xsave', 4096, {
  region: [0, 4096], extra: [4096, 0],
});

/**
 * Inside kvm_xsave.region (Intel SDM vol. 1, 10.5.1 and 13.4), mirrored by the kernel's
 * `struct _xstate` (asm/sigcontext.h):
 *   0 FCW u16 | 2 FSW u16 | 4 FTW abridged u8 (+1 reserved) | 6 FOP u16 | 8 FIP u64 | 16 FDP u64
 *  24 MXCSR u32 | 28 MXCSR_MASK u32 | 32 ST0–ST7 16 bytes each (10 used) | 160 XMM0–XMM15 16 each
 * 416–511 reserved/available | 512 XSAVE header: XSTATE_BV u64, XCOMP_BV u64 (0: standard format)
 * 576 AVX state: the upper 128 bits of YMM0–YMM15, 16 each (standard-format offset, CPUID 0xD.2 EBX).
 * Later components (MPX, AVX-512, PKRU…) sit where CPUID leaf 0xD says on the host.
 */
export const XSAVE_AREA_LAYOUT = defineLayout('XSAVE_AREA_LAYOUT', 'struct _xstate', 832, {
  fcw: [0, U16, 'fpstate.cwd'],
  fsw: [2, U16, 'fpstate.swd'],
  ftw: [4, U8, 'fpstate.twd', U16],
  fop: [6, U16, 'fpstate.fop'],
  fip: [8, U64, 'fpstate.rip'],
  fdp: [16, U64, 'fpstate.rdp'],
  mxcsr: [24, U32, 'fpstate.mxcsr'],
  mxcsrMask: [28, U32, 'fpstate.mxcsr_mask'],
  st: [32, 128, 'fpstate.st_space'],
  xmm: [160, 256, 'fpstate.xmm_space'],
  xstateBv: [512, U64, 'xstate_hdr.xfeatures'],
  xcompBv: [520, U64, 'xstate_hdr.reserved1[0]'],
  ymmHi: [576, 256, 'ymmh.ymmh_space'],
});

export const KVM_XSAVE_SIZE = KVM_XSAVE_LAYOUT.size;

/** XSTATE_BV / XCR0 component bits. */
export const XFEATURE_FP = 1n;
export const XFEATURE_SSE = 2n;
export const XFEATURE_AVX = 4n;

/** x87 + SSE state as an XSAVE image holds it. */
export interface XsaveLegacyState {
  fcw: number;
  fsw: number;
  /** Abridged tag word (bit i = physical register i valid). */
  ftw: number;
  fop: number;
  fip: bigint;
  fdp: bigint;
  mxcsr: number;
  /** st0–st7 in 16-byte slots (10 bytes used each), 128 bytes. */
  st: Uint8Array;
  /** xmm0–xmm15, 256 bytes. */
  xmm: Uint8Array;
}

const X87_INIT_FCW = 0x37f;

/**
 * Reads x87/SSE state from an XSAVE image. A component whose XSTATE_BV bit is clear is in its
 * initial state whatever the bytes say (XRSTOR loads the init values), so those are returned.
 * MXCSR is always taken from the image (XRSTOR loads it whenever SSE or AVX is requested).
 */
export function decodeXsaveLegacy(image: Uint8Array): XsaveLegacyState {
  // (copies through `new Uint8Array(subarray)`: Buffer#slice would share memory)
  const v = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const L = XSAVE_AREA_LAYOUT;
  const bv = v.getBigUint64(L.xstateBv, true);
  const fp = (bv & XFEATURE_FP) !== 0n;
  const sse = (bv & XFEATURE_SSE) !== 0n;
  return {
    fcw: fp ? v.getUint16(L.fcw, true) : X87_INIT_FCW,
    fsw: fp ? v.getUint16(L.fsw, true) : 0,
    ftw: fp ? v.getUint8(L.ftw) : 0,
    fop: fp ? v.getUint16(L.fop, true) : 0,
    fip: fp ? v.getBigUint64(L.fip, true) : 0n,
    fdp: fp ? v.getBigUint64(L.fdp, true) : 0n,
    mxcsr: v.getUint32(L.mxcsr, true),
    st: fp ? new Uint8Array(image.subarray(L.st, L.st + 128)) : new Uint8Array(128),
    xmm: sse ? new Uint8Array(image.subarray(L.xmm, L.xmm + 256)) : new Uint8Array(256),
  };
}

/**
 * Writes x87/SSE state into an XSAVE image and sets XSTATE_BV's FP and SSE bits so that XRSTOR
 * (KVM_SET_XSAVE) really loads it. Other components are left as they are.
 */
export function encodeXsaveLegacy(image: Uint8Array, s: XsaveLegacyState): void {
  const v = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const L = XSAVE_AREA_LAYOUT;
  v.setUint16(L.fcw, s.fcw, true);
  v.setUint16(L.fsw, s.fsw, true);
  v.setUint8(L.ftw, s.ftw);
  v.setUint8(L.ftw + 1, 0);
  v.setUint16(L.fop, s.fop, true);
  v.setBigUint64(L.fip, s.fip, true);
  v.setBigUint64(L.fdp, s.fdp, true);
  v.setUint32(L.mxcsr, s.mxcsr, true);
  writeBytes(v, L.st, 128, s.st, 'xsave st');
  writeBytes(v, L.xmm, 256, s.xmm, 'xsave xmm');
  v.setBigUint64(L.xstateBv, v.getBigUint64(L.xstateBv, true) | XFEATURE_FP | XFEATURE_SSE, true);
}

// ---------------------------------------------------------------------------------------------
// struct kvm_xcrs + struct kvm_xcr (KVM_GET_XCRS / KVM_SET_XCRS)

export interface KvmXcr {
  /** XCR number (0 = XCR0). */
  xcr: number;
  value: bigint;
}

export const KVM_MAX_XCRS = 16;

export const KVM_XCR_LAYOUT = defineLayout('KVM_XCR_LAYOUT', 'struct kvm_xcr', 16, {
  xcr: [0, U32], reserved: [4, U32], value: [8, U64],
});

export const KVM_XCRS_LAYOUT = defineLayout('KVM_XCRS_LAYOUT', 'struct kvm_xcrs', 392, {
  nrXcrs: [0, U32], flags: [4, U32], xcrs: [8, KVM_MAX_XCRS * 16], padding: [264, 128],
});

export const KVM_XCRS_CODEC: Codec<KvmXcr[]> = {
  decode(view, base) {
    const n = Math.min(view.getUint32(base + KVM_XCRS_LAYOUT.nrXcrs, true), KVM_MAX_XCRS);
    const out: KvmXcr[] = [];
    for (let i = 0; i < n; i++) {
      const at = base + KVM_XCRS_LAYOUT.xcrs + i * KVM_XCR_LAYOUT.size;
      out.push({ xcr: view.getUint32(at + KVM_XCR_LAYOUT.xcr, true), value: view.getBigUint64(at + KVM_XCR_LAYOUT.value, true) });
    }
    return out;
  },
  encode(view, base, xcrs) {
    if (xcrs.length > KVM_MAX_XCRS) throw new RangeError(`kvm_xcrs holds at most ${KVM_MAX_XCRS} XCRs, got ${xcrs.length}`);
    new Uint8Array(view.buffer, view.byteOffset + base, KVM_XCRS_LAYOUT.size).fill(0);
    view.setUint32(base + KVM_XCRS_LAYOUT.nrXcrs, xcrs.length, true);
    xcrs.forEach((x, i) => {
      const at = base + KVM_XCRS_LAYOUT.xcrs + i * KVM_XCR_LAYOUT.size;
      view.setUint32(at + KVM_XCR_LAYOUT.xcr, x.xcr, true);
      view.setBigUint64(at + KVM_XCR_LAYOUT.value, x.value, true);
    });
  },
};

// ---------------------------------------------------------------------------------------------
// struct kvm_guest_debug (KVM_SET_GUEST_DEBUG)

export interface KvmGuestDebug {
  /** KVM_GUESTDBG_* flags. */
  control: number;
  /** dr0–dr7 (dr4/dr5 unused); used with KVM_GUESTDBG_USE_HW_BP. */
  debugreg: bigint[];
}

export const KVM_GUESTDBG_ENABLE = 0x1;
export const KVM_GUESTDBG_SINGLESTEP = 0x2;
export const KVM_GUESTDBG_USE_SW_BP = 0x10000;
export const KVM_GUESTDBG_USE_HW_BP = 0x20000;
export const KVM_GUESTDBG_INJECT_DB = 0x40000;
export const KVM_GUESTDBG_INJECT_BP = 0x80000;

export const KVM_GUEST_DEBUG_LAYOUT = defineLayout('KVM_GUEST_DEBUG_LAYOUT', 'struct kvm_guest_debug', 72, {
  control: [0, U32], pad: [4, U32], debugreg: [8, 64, 'arch.debugreg'],
});

export const KVM_GUEST_DEBUG_CODEC: Codec<KvmGuestDebug> = {
  decode(view, base) {
    const debugreg: bigint[] = [];
    for (let i = 0; i < 8; i++) debugreg.push(view.getBigUint64(base + KVM_GUEST_DEBUG_LAYOUT.debugreg + 8 * i, true));
    return { control: view.getUint32(base + KVM_GUEST_DEBUG_LAYOUT.control, true), debugreg };
  },
  encode(view, base, d) {
    view.setUint32(base + KVM_GUEST_DEBUG_LAYOUT.control, d.control >>> 0, true);
    view.setUint32(base + KVM_GUEST_DEBUG_LAYOUT.pad, 0, true);
    for (let i = 0; i < 8; i++) view.setBigUint64(base + KVM_GUEST_DEBUG_LAYOUT.debugreg + 8 * i, d.debugreg[i] ?? 0n, true);
  },
};

// ---------------------------------------------------------------------------------------------
// struct kvm_vcpu_events (kvm_run.s.regs.events with KVM_SYNC_X86_EVENTS)

export const KVM_VCPU_EVENTS_LAYOUT = defineLayout('KVM_VCPU_EVENTS_LAYOUT', 'struct kvm_vcpu_events', 64, {
  exceptionInjected: [0, U8, 'exception.injected'],
  exceptionNr: [1, U8, 'exception.nr'],
  exceptionHasErrorCode: [2, U8, 'exception.has_error_code'],
  exceptionPending: [3, U8, 'exception.pending'],
  exceptionErrorCode: [4, U32, 'exception.error_code'],
  interruptInjected: [8, U8, 'interrupt.injected'],
  interruptNr: [9, U8, 'interrupt.nr'],
  interruptSoft: [10, U8, 'interrupt.soft'],
  interruptShadow: [11, U8, 'interrupt.shadow'],
  nmiInjected: [12, U8, 'nmi.injected'],
  nmiPending: [13, U8, 'nmi.pending'],
  nmiMasked: [14, U8, 'nmi.masked'],
  sipiVector: [16, U32],
  flags: [20, U32],
  smiSmm: [24, U8, 'smi.smm'],
  smiPending: [25, U8, 'smi.pending'],
  smiSmmInsideNmi: [26, U8, 'smi.smm_inside_nmi'],
  smiLatchedInit: [27, U8, 'smi.latched_init'],
  tripleFaultPending: [28, U8, 'triple_fault.pending'],
  exceptionHasPayload: [55, U8],
  exceptionPayload: [56, U64],
});

// ---------------------------------------------------------------------------------------------
// struct kvm_run (mmap'ed from the vCPU fd)

/** Size of the exit union (`char padding[256]`) and of the sync-regs union (SYNC_REGS_SIZE_BYTES). */
export const KVM_RUN_EXIT_UNION_SIZE = 256;
export const KVM_SYNC_REGS_SIZE_BYTES = 2048;
export const KVM_INTERNAL_ERROR_MAX_DATA = 16;
export const KVM_SYSTEM_EVENT_MAX_DATA = 16;

/**
 * Header, the exit union at 32 (one prefix per exit kind), and the sync-regs block at 288.
 * Only the x86 exits switchsim decodes are declared.
 */
export const KVM_RUN_LAYOUT = defineLayout('KVM_RUN_LAYOUT', 'struct kvm_run', 304 + KVM_SYNC_REGS_SIZE_BYTES, {
  requestInterruptWindow: [0, U8],
  immediateExit: [1, U8],
  padding1: [2, 6],
  exitReason: [8, U32],
  readyForInterruptInjection: [12, U8],
  ifFlag: [13, U8],
  flags: [14, U16],
  cr8: [16, U64],
  apicBase: [24, U64],
  // the exit union
  exit: [32, KVM_RUN_EXIT_UNION_SIZE, 'padding'],
  hwHardwareExitReason: [32, U64, 'hw.hardware_exit_reason'],
  failEntryHardwareReason: [32, U64, 'fail_entry.hardware_entry_failure_reason'],
  failEntryCpu: [40, U32, 'fail_entry.cpu'],
  exException: [32, U32, 'ex.exception'],
  exErrorCode: [36, U32, 'ex.error_code'],
  ioDirection: [32, U8, 'io.direction'],
  ioSize: [33, U8, 'io.size'],
  ioPort: [34, U16, 'io.port'],
  ioCount: [36, U32, 'io.count'],
  ioDataOffset: [40, U64, 'io.data_offset'],
  debugException: [32, U32, 'debug.arch.exception'],
  debugPc: [40, U64, 'debug.arch.pc'],
  debugDr6: [48, U64, 'debug.arch.dr6'],
  debugDr7: [56, U64, 'debug.arch.dr7'],
  mmioPhysAddr: [32, U64, 'mmio.phys_addr'],
  mmioData: [40, 8, 'mmio.data'],
  mmioLen: [48, U32, 'mmio.len'],
  mmioIsWrite: [52, U8, 'mmio.is_write'],
  hypercallNr: [32, U64, 'hypercall.nr'],
  hypercallArgs: [40, 48, 'hypercall.args'],
  hypercallRet: [88, U64, 'hypercall.ret'],
  hypercallLongmode: [96, U32, 'hypercall.longmode'],
  tprAccessRip: [32, U64, 'tpr_access.rip'],
  tprAccessIsWrite: [40, U32, 'tpr_access.is_write'],
  internalSuberror: [32, U32, 'internal.suberror'],
  internalNdata: [36, U32, 'internal.ndata'],
  internalData: [40, 8 * KVM_INTERNAL_ERROR_MAX_DATA, 'internal.data'],
  systemEventType: [32, U32, 'system_event.type'],
  systemEventNdata: [36, U32, 'system_event.ndata'],
  systemEventData: [40, 8 * KVM_SYSTEM_EVENT_MAX_DATA, 'system_event.data'],
  eoiVector: [32, U8, 'eoi.vector'],
  msrError: [32, U8, 'msr.error'],
  msrReason: [40, U32, 'msr.reason'],
  msrIndex: [44, U32, 'msr.index'],
  msrData: [48, U64, 'msr.data'],
  notifyFlags: [32, U32, 'notify.flags'],
  // sync regs (KVM_CAP_SYNC_REGS)
  kvmValidRegs: [288, U64],
  kvmDirtyRegs: [296, U64],
  syncRegs: [304, 144, 's.regs.regs'],
  syncSregs: [448, 312, 's.regs.sregs'],
  syncEvents: [760, 64, 's.regs.events'],
  syncBlock: [304, KVM_SYNC_REGS_SIZE_BYTES, 's.padding'],
}, {
  /** Bytes before the exit union: what a thread that only pokes immediate_exit needs to map. */
  headerBytes: 32,
});

// ---------------------------------------------------------------------------------------------
// Fast accessors for the sync-regs block of a mapped kvm_run (no whole-struct decode)

function absoluteOffsets<K extends string>(names: readonly K[], base: number, layout: Layout<K>): Readonly<Record<K, number>> {
  const out = {} as Record<K, number>;
  for (const n of names) out[n] = base + layout[n];
  return Object.freeze(out);
}

/** Offset inside kvm_run of each GPR in s.regs.regs. */
export const SYNC_REG_OFFSET = absoluteOffsets(KVM_REG_NAMES, KVM_RUN_LAYOUT.syncRegs, KVM_REGS_LAYOUT);
/** Offset inside kvm_run of each u64 special register (cr0…apicBase) in s.regs.sregs. */
export const SYNC_SREG_OFFSET = absoluteOffsets(KVM_SREG_U64_NAMES, KVM_RUN_LAYOUT.syncSregs, KVM_SREGS_LAYOUT);
/** Offset inside kvm_run of each segment (a kvm_segment) in s.regs.sregs. */
export const SYNC_SEGMENT_OFFSET = absoluteOffsets(KVM_SEGMENT_NAMES, KVM_RUN_LAYOUT.syncSregs, KVM_SREGS_LAYOUT);

/** One GPR from s.regs.regs (valid after an exit with KVM_SYNC_X86_REGS in kvm_valid_regs). */
export function readSyncReg(run: DataView, name: KvmRegName): bigint {
  return run.getBigUint64(SYNC_REG_OFFSET[name], true);
}

/** Writes one GPR into s.regs.regs; the caller marks KVM_SYNC_X86_REGS dirty. */
export function writeSyncReg(run: DataView, name: KvmRegName, value: bigint): void {
  run.setBigUint64(SYNC_REG_OFFSET[name], value, true);
}

export function readSyncSreg(run: DataView, name: KvmSregU64Name): bigint {
  return run.getBigUint64(SYNC_SREG_OFFSET[name], true);
}

/** Writes one u64 special register into s.regs.sregs; the caller marks KVM_SYNC_X86_SREGS dirty. */
export function writeSyncSreg(run: DataView, name: KvmSregU64Name, value: bigint): void {
  run.setBigUint64(SYNC_SREG_OFFSET[name], value, true);
}

export function readSyncSegmentBase(run: DataView, name: KvmSegmentName): bigint {
  return run.getBigUint64(SYNC_SEGMENT_OFFSET[name] + KVM_SEGMENT_LAYOUT.base, true);
}

export function writeSyncSegmentBase(run: DataView, name: KvmSegmentName, value: bigint): void {
  run.setBigUint64(SYNC_SEGMENT_OFFSET[name] + KVM_SEGMENT_LAYOUT.base, value, true);
}
