/**
 * CPUID as the functional core answers it: the table the guest saw under KVM (captured in the
 * guest by src/kvm/cpuidProbe.ts), or, without KVM, a fixed baseline x86-64 table that
 * advertises only what the core implements (SSE/SSE2, no AVX), so programs that dispatch on
 * CPUID pick code paths the core can run.
 */
import type { CpuidEntry } from '../kvm/cpuid.js';

export type CpuidLookup = (leaf: number, subleaf: number) => CpuidEntry;

function str4(s: string): number {
  return s.charCodeAt(0) | (s.charCodeAt(1) << 8) | (s.charCodeAt(2) << 16) | (s.charCodeAt(3) << 24);
}

/** A baseline x86-64 CPU: fpu tsc cx8 cmov mmx fxsr sse sse2, syscall, lm, nx. */
export const BASELINE_CPUID: readonly CpuidEntry[] = [
  { leaf: 0, subleaf: 0, eax: 1, ebx: str4('Genu'), ecx: str4('ntel'), edx: str4('ineI') },
  // family 6 model 0x55-ish; edx: FPU TSC CX8 APIC? no: FPU(0) TSC(4) MSR(5) CX8(8) CMOV(15) CLFSH(19) MMX(23) FXSR(24) SSE(25) SSE2(26)
  { leaf: 1, subleaf: 0, eax: 0x50654, ebx: 0x00010800, ecx: 0, edx: (1 | (1 << 4) | (1 << 5) | (1 << 8) | (1 << 15) | (1 << 19) | (1 << 23) | (1 << 24) | (1 << 25) | (1 << 26)) >>> 0 },
  { leaf: 0x80000000, subleaf: 0, eax: 0x80000008, ebx: 0, ecx: 0, edx: 0 },
  // SYSCALL(11) NX(20) LM(29); LAHF in ecx bit 0
  { leaf: 0x80000001, subleaf: 0, eax: 0, ebx: 0, ecx: 1, edx: ((1 << 11) | (1 << 20) | (1 << 29)) >>> 0 },
  { leaf: 0x80000008, subleaf: 0, eax: 0x3030, ebx: 0, ecx: 0, edx: 0 },
];

/** Builds the lookup with the hardware's rules for leaves and subleaves that are not listed. */
export function cpuidLookup(table: readonly CpuidEntry[]): CpuidLookup {
  const exact = new Map<string, CpuidEntry>();
  const hasSubleaves = new Set<number>();
  for (const e of table) {
    exact.set(`${e.leaf}:${e.subleaf}`, e);
    if (e.subleaf !== 0) hasSubleaves.add(e.leaf);
  }
  const maxBasic = exact.get('0:0')?.eax ?? 0;
  const maxExt = exact.get(`${0x80000000}:0`)?.eax ?? 0;
  const zero = (leaf: number, subleaf: number): CpuidEntry => ({ leaf, subleaf, eax: 0, ebx: 0, ecx: 0, edx: 0 });
  return (leaf, subleaf) => {
    const out = leaf >= 0x80000000 ? (leaf > maxExt ? maxBasic : leaf) : leaf > maxBasic ? maxBasic : leaf;
    const e = exact.get(`${out}:${subleaf}`) ?? (hasSubleaves.has(out) ? undefined : exact.get(`${out}:0`));
    return e ? { ...e, leaf, subleaf } : zero(leaf, subleaf);
  };
}
