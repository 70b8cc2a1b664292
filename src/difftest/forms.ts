/**
 * The instruction coverage of the random differential test, as data. Each entry names iced-x86
 * mnemonics; every 64-bit-mode encoding ("Code") of those mnemonics that passes the global
 * filter below becomes a form the generator can emit, with its operand kinds read from iced's
 * opcode table. Adding a mnemonic here (or removing an exclusion) extends the test; the JS
 * core's supported set and the CPUID the guest sees filter the list at run time (selectForms).
 *
 * `special` names the generator routine for forms that need set-up instructions or structure
 * (division without #DE, string ops with rsi/rdi/rcx into the scratch page, branches, calls…);
 * forms without one get random registers, immediates and scratch-page memory operands.
 */
import { Code, CodeExt, EncodingKind, Instruction, MemorySizeExt, Mnemonic, OpCodeOperandKind as K } from 'iced-x86';
import type { CpuidEntry } from '../kvm/cpuid.js';
import { findCpuid } from '../kvm/cpuid.js';
import { CpuidFeature } from 'iced-x86';

export type FormGroup =
  | 'int' | 'shift' | 'muldiv' | 'bitscan' | 'bmi' | 'stack' | 'flow' | 'string' | 'misc'
  | 'sse-move' | 'sse-int' | 'sse-fp' | 'sse-cvt' | 'sse-shuffle' | 'sse3+' | 'x87-control';

export type Special =
  | 'div' // div/idiv: dividend and divisor set so that no #DE happens (most of the time)
  | 'shiftDouble' // shld/shrd: 16-bit counts kept <= 16 (larger ones are undefined)
  | 'bitMem' // bt*/m,r: the bit offset register keeps the access inside the page
  | 'string' // movs/stos/lods/cmps/scas (+rep): rsi/rdi/rcx/DF set up
  | 'branch' // jcc/jmp rel, loop*, jrcxz: forward over 1–3 items
  | 'call' // call rel32: a subroutine placed after the terminator, ending in ret
  | 'callIndirect' // call r/m64 to such a subroutine
  | 'jmpIndirect' // jmp r/m64 forward
  | 'popf' // popf: a pushed immediate with TF, AC and NT clear (see generator.ts)
  | 'leave' // rbp set near rsp first
  | 'cpuid' // eax/ecx from the captured table
  | 'xgetbv' // ecx = 0 (XCR0; other numbers #GP)
  | 'xlat' // rbx into the scratch page
  | 'ldmxcsr' // a valid MXCSR (exceptions masked) stored first
  | 'moffs'; // mov al/ax/eax/rax <-> [absolute 64-bit address]

export interface FormEntry {
  group: FormGroup;
  /** iced Mnemonic names. */
  mnemonics: readonly string[];
  /** Relative weight of each mnemonic of the entry (default 1). */
  weight?: number;
  special?: Special;
  /** Allow VEX encodings (BMI); default legacy only. */
  vex?: boolean;
  /** iced Code names to leave out. */
  exclude?: readonly string[];
}

const CC = ['o', 'no', 'b', 'ae', 'e', 'ne', 'be', 'a', 's', 'ns', 'p', 'np', 'l', 'ge', 'le', 'g'];
const cap = (s: string) => s[0]!.toUpperCase() + s.slice(1);

export const FORM_TABLE: readonly FormEntry[] = [
  // --- integer
  { group: 'int', weight: 4, mnemonics: ['Add', 'Adc', 'Sub', 'Sbb', 'And', 'Or', 'Xor', 'Cmp', 'Test'] },
  { group: 'int', weight: 2, mnemonics: ['Inc', 'Dec', 'Neg', 'Not'] },
  { group: 'int', weight: 4, mnemonics: ['Mov'], special: undefined, exclude: ['Mov_AL_moffs8', 'Mov_AX_moffs16', 'Mov_EAX_moffs32', 'Mov_RAX_moffs64', 'Mov_moffs8_AL', 'Mov_moffs16_AX', 'Mov_moffs32_EAX', 'Mov_moffs64_RAX'] },
  { group: 'int', weight: 0.5, mnemonics: ['Mov'], special: 'moffs' },
  { group: 'int', weight: 2, mnemonics: ['Movzx', 'Movsx', 'Movsxd', 'Lea'] },
  { group: 'int', weight: 1.5, mnemonics: ['Xchg', 'Cmpxchg', 'Xadd', 'Bswap'] },
  { group: 'int', weight: 0.5, mnemonics: ['Cmpxchg8b', 'Cmpxchg16b'] },
  { group: 'int', mnemonics: ['Cbw', 'Cwde', 'Cdqe', 'Cwd', 'Cdq', 'Cqo'] },
  { group: 'int', weight: 1.5, mnemonics: CC.map((c) => `Cmov${c}`) },
  { group: 'int', weight: 1.5, mnemonics: CC.map((c) => `Set${c}`) },
  { group: 'int', mnemonics: ['Clc', 'Stc', 'Cmc', 'Cld', 'Std', 'Lahf', 'Sahf'] },
  { group: 'int', weight: 0.5, mnemonics: ['Nop', 'Endbr64', 'Pause'] },
  // --- shifts and rotates
  { group: 'shift', weight: 2, mnemonics: ['Shl', 'Sal', 'Shr', 'Sar', 'Rol', 'Ror', 'Rcl', 'Rcr'] },
  { group: 'shift', weight: 2, mnemonics: ['Shld', 'Shrd'], special: 'shiftDouble' },
  // --- multiply and divide
  { group: 'muldiv', weight: 2, mnemonics: ['Mul', 'Imul'] },
  { group: 'muldiv', weight: 3, mnemonics: ['Div', 'Idiv'], special: 'div' },
  // --- bit test and scan
  { group: 'bitscan', weight: 1.5, mnemonics: ['Bt', 'Bts', 'Btr', 'Btc'], special: 'bitMem' },
  { group: 'bitscan', weight: 1.5, mnemonics: ['Bsf', 'Bsr', 'Popcnt', 'Lzcnt', 'Tzcnt'] },
  // --- BMI1/BMI2/ADX/MOVBE (only where CPUID advertises them)
  { group: 'bmi', vex: true, mnemonics: ['Andn', 'Bextr', 'Blsi', 'Blsmsk', 'Blsr', 'Bzhi', 'Mulx', 'Pdep', 'Pext', 'Rorx', 'Sarx', 'Shlx', 'Shrx'] },
  { group: 'bmi', mnemonics: ['Adcx', 'Adox', 'Movbe'] },
  // --- stack
  { group: 'stack', weight: 2, mnemonics: ['Push', 'Pop'], exclude: ['Pushw_FS', 'Pushq_FS', 'Pushw_GS', 'Pushq_GS', 'Popw_FS', 'Popq_FS', 'Popw_GS', 'Popq_GS'] },
  { group: 'stack', mnemonics: ['Pushf', 'Pushfq'] },
  { group: 'stack', mnemonics: ['Popf', 'Popfq'], special: 'popf' },
  { group: 'stack', weight: 0.5, mnemonics: ['Leave'], special: 'leave' },
  // --- control flow (forward only; calls to subroutines after the terminator)
  { group: 'flow', weight: 3, mnemonics: [...CC.map((c) => `J${c}`), 'Jmp'], special: 'branch', exclude: ['Jmp_rm16', 'Jmp_rm32', 'Jmp_rm64', 'Jmp_ptr1616', 'Jmp_ptr1632', 'Jmp_m1616', 'Jmp_m1632', 'Jmp_m1664'] },
  { group: 'flow', mnemonics: ['Loop', 'Loope', 'Loopne', 'Jrcxz', 'Jecxz'], special: 'branch' },
  { group: 'flow', mnemonics: ['Call'], special: 'call', exclude: ['Call_rm16', 'Call_rm32', 'Call_rm64', 'Call_m1616', 'Call_m1632', 'Call_m1664', 'Call_ptr1616', 'Call_ptr1632'] },
  { group: 'flow', weight: 0.5, mnemonics: ['Call'], special: 'callIndirect', exclude: ['Call_rel16', 'Call_rel32_32', 'Call_rel32_64', 'Call_rm16', 'Call_rm32', 'Call_m1616', 'Call_m1632', 'Call_m1664', 'Call_ptr1616', 'Call_ptr1632'] },
  { group: 'flow', weight: 0.5, mnemonics: ['Jmp'], special: 'jmpIndirect', exclude: ['Jmp_rel8_16', 'Jmp_rel8_32', 'Jmp_rel8_64', 'Jmp_rel16', 'Jmp_rel32_32', 'Jmp_rel32_64', 'Jmp_rm16', 'Jmp_rm32', 'Jmp_m1616', 'Jmp_m1632', 'Jmp_m1664', 'Jmp_ptr1616', 'Jmp_ptr1632'] },
  // --- strings
  { group: 'string', weight: 3, mnemonics: ['Movsb', 'Movsw', 'Movsd', 'Movsq', 'Stosb', 'Stosw', 'Stosd', 'Stosq', 'Lodsb', 'Lodsw', 'Lodsd', 'Lodsq', 'Cmpsb', 'Cmpsw', 'Cmpsd', 'Cmpsq', 'Scasb', 'Scasw', 'Scasd', 'Scasq'], special: 'string' },
  // --- misc
  { group: 'misc', weight: 0.5, mnemonics: ['Cpuid'], special: 'cpuid' },
  { group: 'misc', weight: 0.2, mnemonics: ['Xgetbv'], special: 'xgetbv' },
  { group: 'misc', weight: 0.5, mnemonics: ['Xlatb'], special: 'xlat' },
  { group: 'misc', weight: 0.3, mnemonics: ['Lfence', 'Mfence', 'Sfence', 'Prefetchnta', 'Prefetcht0', 'Prefetcht1', 'Prefetcht2'] },
  // --- SSE/SSE2 moves
  { group: 'sse-move', weight: 2, mnemonics: ['Movd', 'Movq', 'Movdqa', 'Movdqu', 'Movaps', 'Movups', 'Movapd', 'Movupd', 'Movss', 'Movsd'] },
  { group: 'sse-move', mnemonics: ['Movhps', 'Movlps', 'Movhpd', 'Movlpd', 'Movhlps', 'Movlhps', 'Movmskps', 'Movmskpd', 'Pmovmskb', 'Movntdq', 'Movntps', 'Movntpd', 'Movnti'] },
  { group: 'sse-move', weight: 0.3, mnemonics: ['Ldmxcsr'], special: 'ldmxcsr' },
  { group: 'sse-move', weight: 0.3, mnemonics: ['Stmxcsr'] },
  // --- SSE2 integer
  {
    group: 'sse-int', weight: 1.5,
    mnemonics: [
      'Pxor', 'Por', 'Pand', 'Pandn', 'Paddb', 'Paddw', 'Paddd', 'Paddq', 'Psubb', 'Psubw', 'Psubd', 'Psubq',
      'Paddsb', 'Paddsw', 'Paddusb', 'Paddusw', 'Psubsb', 'Psubsw', 'Psubusb', 'Psubusw',
      'Pcmpeqb', 'Pcmpeqw', 'Pcmpeqd', 'Pcmpgtb', 'Pcmpgtw', 'Pcmpgtd',
      'Pmullw', 'Pmulhw', 'Pmulhuw', 'Pmuludq', 'Pmaddwd', 'Pavgb', 'Pavgw', 'Pminub', 'Pmaxub', 'Pminsw', 'Pmaxsw', 'Psadbw',
      'Psllw', 'Pslld', 'Psllq', 'Psrlw', 'Psrld', 'Psrlq', 'Psraw', 'Psrad', 'Pslldq', 'Psrldq',
      'Pshufd', 'Pshuflw', 'Pshufhw',
      'Punpcklbw', 'Punpcklwd', 'Punpckldq', 'Punpcklqdq', 'Punpckhbw', 'Punpckhwd', 'Punpckhdq', 'Punpckhqdq',
      'Packsswb', 'Packssdw', 'Packuswb', 'Pextrw', 'Pinsrw',
    ],
  },
  // --- SSE/SSE2 floating point (rcpps/rsqrtps are left out: their approximations differ between CPU models)
  {
    group: 'sse-fp', weight: 1.5,
    mnemonics: [
      'Addss', 'Addsd', 'Addps', 'Addpd', 'Subss', 'Subsd', 'Subps', 'Subpd', 'Mulss', 'Mulsd', 'Mulps', 'Mulpd',
      'Divss', 'Divsd', 'Divps', 'Divpd', 'Sqrtss', 'Sqrtsd', 'Sqrtps', 'Sqrtpd', 'Minss', 'Minsd', 'Minps', 'Minpd',
      'Maxss', 'Maxsd', 'Maxps', 'Maxpd', 'Cmpss', 'Cmpsd', 'Cmpps', 'Cmppd', 'Comiss', 'Comisd', 'Ucomiss', 'Ucomisd',
      'Andps', 'Andpd', 'Andnps', 'Andnpd', 'Orps', 'Orpd', 'Xorps', 'Xorpd',
    ],
  },
  {
    group: 'sse-cvt', weight: 1.5,
    mnemonics: [
      'Cvtsi2ss', 'Cvtsi2sd', 'Cvtss2si', 'Cvtsd2si', 'Cvttss2si', 'Cvttsd2si', 'Cvtss2sd', 'Cvtsd2ss',
      'Cvtdq2pd', 'Cvtdq2ps', 'Cvtpd2dq', 'Cvtps2dq', 'Cvttpd2dq', 'Cvttps2dq', 'Cvtpd2ps', 'Cvtps2pd',
    ],
  },
  { group: 'sse-shuffle', mnemonics: ['Shufps', 'Shufpd', 'Unpcklps', 'Unpckhps', 'Unpcklpd', 'Unpckhpd'] },
  // --- SSE3/SSSE3/SSE4.1/SSE4.2 (x86-64-v2 code; generated only where the core supports them)
  {
    group: 'sse3+', weight: 0.5,
    mnemonics: [
      'Movddup', 'Movshdup', 'Movsldup', 'Lddqu', 'Addsubps', 'Addsubpd', 'Haddps', 'Haddpd', 'Hsubps', 'Hsubpd',
      'Pshufb', 'Palignr', 'Pabsb', 'Pabsw', 'Pabsd', 'Phaddw', 'Phaddd', 'Phaddsw', 'Phsubw', 'Phsubd', 'Phsubsw',
      'Pmaddubsw', 'Pmulhrsw', 'Psignb', 'Psignw', 'Psignd',
      'Pminsb', 'Pminsd', 'Pminud', 'Pminuw', 'Pmaxsb', 'Pmaxsd', 'Pmaxud', 'Pmaxuw', 'Pmulld', 'Pmuldq', 'Pcmpeqq',
      'Packusdw', 'Pmovsxbw', 'Pmovsxbd', 'Pmovsxbq', 'Pmovsxwd', 'Pmovsxwq', 'Pmovsxdq',
      'Pmovzxbw', 'Pmovzxbd', 'Pmovzxbq', 'Pmovzxwd', 'Pmovzxwq', 'Pmovzxdq',
      'Pblendw', 'Blendps', 'Blendpd', 'Pblendvb', 'Blendvps', 'Blendvpd', 'Ptest',
      'Pextrb', 'Pextrd', 'Pextrq', 'Pinsrb', 'Pinsrd', 'Pinsrq', 'Extractps', 'Insertps',
      'Roundss', 'Roundsd', 'Roundps', 'Roundpd', 'Dpps', 'Dppd', 'Mpsadbw', 'Phminposuw',
      'Pcmpgtq', 'Crc32', 'Pcmpestri', 'Pcmpestri64', 'Pcmpestrm', 'Pcmpestrm64', 'Pcmpistri', 'Pcmpistrm',
    ],
  },
  // --- x87 control (what libc start-up code uses; no x87 arithmetic)
  { group: 'x87-control', weight: 0.3, mnemonics: ['Fnstcw', 'Fldcw', 'Fnstsw', 'Fnclex', 'Fninit', 'Wait', 'Fnop'] },
];

/** Operand kinds the generator can produce (anything else excludes the Code). */
const GENERATABLE = new Set<number>([
  K.r8_or_mem, K.r16_or_mem, K.r32_or_mem, K.r64_or_mem, K.xmm_or_mem, K.mem, K.mem_offs,
  K.r8_reg, K.r8_opcode, K.r16_reg, K.r16_rm, K.r16_opcode,
  K.r32_reg, K.r32_rm, K.r32_opcode, K.r32_vvvv,
  K.r64_reg, K.r64_rm, K.r64_opcode, K.r64_vvvv,
  K.xmm_reg, K.xmm_rm,
  K.al, K.cl, K.ax, K.eax, K.rax,
  K.imm8, K.imm8_const_1, K.imm8sex16, K.imm8sex32, K.imm8sex64, K.imm16, K.imm32, K.imm32sex64, K.imm64,
  K.seg_rSI, K.es_rDI, K.seg_rDI, K.seg_rBX_al,
  K.br64_1, K.br64_4, K.br32_1,
]);

export interface Form {
  code: Code;
  name: string;
  mnemonic: Mnemonic;
  mnemonicName: string;
  group: FormGroup;
  special: Special | undefined;
  /** Operand kinds (iced OpCodeOperandKind), opCount entries. */
  ops: K[];
  /** Bytes of the memory operand (0 when none). */
  memSize: number;
  lockable: boolean;
  /** Weight of the form (its entry's weight shared among the mnemonic's forms). */
  weight: number;
  /** iced CPUID feature names the instruction needs. */
  features: string[];
}

const FEATURE_NAMES = new Map<number, string>(
  Object.entries(CpuidFeature).filter(([, v]) => typeof v === 'number').map(([k, v]) => [v as number, k]),
);

/** Features every x86-64 CPU has: no CPUID check needed. */
const BASELINE = new Set([
  'INTEL8086', 'INTEL8086_ONLY', 'INTEL186', 'INTEL286', 'INTEL386', 'INTEL486', 'X64', 'CMOV', 'CPUID', 'FPU', 'FPU287',
  'FPU387', 'SSE', 'SSE2', 'FXSR', 'MULTIBYTENOP', 'CX8', 'PAUSE',
]);

/** CPUID (leaf, subleaf, register, bit) of the optional features the table uses. */
const FEATURE_BITS: Record<string, [number, number, 'ecx' | 'ebx' | 'edx', number]> = {
  SSE3: [1, 0, 'ecx', 0],
  SSSE3: [1, 0, 'ecx', 9],
  SSE4_1: [1, 0, 'ecx', 19],
  SSE4_2: [1, 0, 'ecx', 20],
  POPCNT: [1, 0, 'ecx', 23],
  MOVBE: [1, 0, 'ecx', 22],
  CMPXCHG16B: [1, 0, 'ecx', 13],
  LZCNT: [0x80000001, 0, 'ecx', 5],
  BMI1: [7, 0, 'ebx', 3],
  BMI2: [7, 0, 'ebx', 8],
  ADX: [7, 0, 'ebx', 19],
  // xgetbv needs CR4.OSXSAVE, which CPUID.1:ECX.OSXSAVE reports as the guest sees it.
  XSAVE: [1, 0, 'ecx', 27],
  // endbr64 is a NOP without CET: always allowed.
  CET_IBT: [0, 0, 'ebx', -1],
};

export function cpuHasFeature(cpuid: readonly CpuidEntry[], feature: string): boolean {
  if (BASELINE.has(feature)) return true;
  const f = FEATURE_BITS[feature];
  if (!f) return false;
  if (f[3] < 0) return true;
  const e = findCpuid(cpuid, f[0], f[1]);
  return e !== undefined && ((e[f[2]] >>> f[3]) & 1) === 1;
}

const MNEMONIC_NAMES = new Map<number, string>(
  Object.entries(Mnemonic).filter(([, v]) => typeof v === 'number').map(([k, v]) => [v as number, k]),
);
const CODE_ENTRIES: [string, number][] = Object.entries(Code).filter(([, v]) => typeof v === 'number') as [string, number][];

function isBranchWithOperandSizeOverride(name: string): boolean {
  // 66-prefixed near branches: Intel ignores the prefix in 64-bit mode, AMD truncates rip.
  if (!/^(J|Call|Ret|Loop)/.test(name)) return false;
  return /_(rel8_16|rel16|rm16)$/.test(name) || /^Retnw/.test(name) || /_16(_[ER]?CX)?$/.test(name);
}

let expanded: Form[] | undefined;

/** Every form of FORM_TABLE (unfiltered), computed once. */
export function allForms(): readonly Form[] {
  if (expanded) return expanded;
  const out: Form[] = [];
  const byMnemonic = new Map<number, [string, number][]>();
  for (const [name, code] of CODE_ENTRIES) {
    const oc = CodeExt.opCode(code as Code);
    try {
      if (!oc.isInstruction || !oc.mode64) continue;
      const m = oc.mnemonic as number;
      let list = byMnemonic.get(m);
      if (!list) byMnemonic.set(m, (list = []));
      list.push([name, code]);
    } finally {
      oc.free();
    }
  }
  for (const entry of FORM_TABLE) {
    for (const mName of entry.mnemonics) {
      const m = (Mnemonic as unknown as Record<string, number>)[mName];
      if (m === undefined) throw new Error(`FORM_TABLE: unknown iced mnemonic ${mName}`);
      const forms: Form[] = [];
      for (const [name, code] of byMnemonic.get(m) ?? []) {
        if (entry.exclude?.includes(name) || isBranchWithOperandSizeOverride(name)) continue;
        const oc = CodeExt.opCode(code as Code);
        try {
          const legacy = oc.encoding === EncodingKind.Legacy;
          const vexOk = entry.vex === true && oc.encoding === EncodingKind.VEX && oc.L === 0;
          if (!legacy && !vexOk) continue;
          if (oc.isPrivileged || oc.isInputOutput || oc.mustBeCpl0 || !oc.cpl3 || oc.fwait) continue;
          const ops: K[] = [];
          for (let i = 0; i < oc.opCount; i++) ops.push(oc.opKind(i));
          if (!ops.every((k) => GENERATABLE.has(k))) continue;
          const isMoffs = ops.includes(K.mem_offs);
          if ((entry.special === 'moffs') !== isMoffs) continue;
          const isString = ops.some((k) => k === K.seg_rSI || k === K.es_rDI || k === K.seg_rDI);
          if ((entry.special === 'string') !== isString) continue;
          if (ops.includes(K.seg_rBX_al) && entry.special !== 'xlat') continue;
          const ins = Instruction.create(code as Code);
          const features = Array.from(ins.cpuidFeatures(), (f) => FEATURE_NAMES.get(f) ?? `feature${f}`);
          ins.free();
          forms.push({
            code: code as Code,
            name,
            mnemonic: m as Mnemonic,
            mnemonicName: MNEMONIC_NAMES.get(m) ?? mName,
            group: entry.group,
            special: entry.special,
            ops,
            memSize: MemorySizeExt.size(oc.memorySize),
            lockable: oc.canUseLockPrefix,
            weight: 0,
            features,
          });
        } finally {
          oc.free();
        }
      }
      for (const f of forms) f.weight = (entry.weight ?? 1) / forms.length;
      out.push(...forms);
    }
  }
  expanded = out;
  return out;
}

/** Decides whether the JS core executes an instruction form. */
export type SupportFilter = (form: Form) => boolean;

export interface FormSelection {
  forms: Form[];
  /** Forms left out, and why (for the coverage report). */
  excluded: { form: Form; reason: 'cpuid' | 'unsupported' | 'group' }[];
}

/** The forms the generator may emit here: the CPU advertises them and the JS core supports them. */
export function selectForms(opts: { cpuid: readonly CpuidEntry[]; supports: SupportFilter; groups?: readonly FormGroup[] }): FormSelection {
  const forms: Form[] = [];
  const excluded: FormSelection['excluded'] = [];
  for (const f of allForms()) {
    if (opts.groups && !opts.groups.includes(f.group)) excluded.push({ form: f, reason: 'group' });
    else if (!f.features.every((x) => cpuHasFeature(opts.cpuid, x))) excluded.push({ form: f, reason: 'cpuid' });
    else if (!opts.supports(f)) excluded.push({ form: f, reason: 'unsupported' });
    else forms.push(f);
  }
  return { forms, excluded };
}

export function formByName(name: string): Form | undefined {
  return allForms().find((f) => f.name === name);
}

export const ALL_GROUPS: readonly FormGroup[] = [
  'int', 'shift', 'muldiv', 'bitscan', 'bmi', 'stack', 'flow', 'string', 'misc',
  'sse-move', 'sse-int', 'sse-fp', 'sse-cvt', 'sse-shuffle', 'sse3+', 'x87-control',
];

export { cap as capitalize };
