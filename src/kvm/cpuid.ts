/**
 * The CPUID table the guest sees. KVM-NOTES.md measured CPL3 CPUID as not intercepted on
 * kvm_pvm hosts; on the hosts we run on now it is (a vCPU without KVM_SET_CPUID2 answers
 * zeros), so the VM presents KVM's supported table (like `-cpu host`). Either way the truth is
 * what the guest sees: we capture it by running `cpuid` in user mode inside the guest, leaf by
 * leaf, and keep it for the JS CPUs, which must answer exactly the same.
 */
export interface CpuidEntry {
  leaf: number;
  subleaf: number;
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

export type CpuidQuery = (leaf: number, subleaf: number) => CpuidEntry;

/** Leaves whose answer depends on ECX, and how many subleaves to take. */
function subleafCount(leaf: number, sub0: CpuidEntry, query: CpuidQuery): CpuidEntry[] {
  const out = [sub0];
  const more = (limit: number, stop: (e: CpuidEntry) => boolean) => {
    for (let s = 1; s < limit; s++) {
      const e = query(leaf, s);
      if (stop(e)) break;
      out.push(e);
    }
  };
  switch (leaf) {
    case 0x4:
    case 0x8000001d:
      // deterministic cache parameters: until the cache type field is 0
      more(16, (e) => (e.eax & 0x1f) === 0);
      break;
    case 0x7:
    case 0x14:
    case 0x17:
    case 0x18:
    case 0x1d:
    case 0x20:
      // EAX of subleaf 0 is the highest subleaf
      more(Math.min(sub0.eax, 15) + 1, () => false);
      break;
    case 0xb:
    case 0x1f:
      // extended topology: until the level type is 0
      more(8, (e) => ((e.ecx >> 8) & 0xff) === 0);
      break;
    case 0xd:
      // XSAVE components 1..63
      more(64, () => false);
      break;
    case 0xf:
    case 0x10:
    case 0x12:
      more(4, () => false);
      break;
    default:
      break;
  }
  return out;
}

/** Enumerates every basic and extended leaf (and the subleaves that exist) through `query`. */
export function enumerateCpuid(query: CpuidQuery): CpuidEntry[] {
  const table: CpuidEntry[] = [];
  for (const base of [0, 0x80000000]) {
    const first = query(base, 0);
    const max = first.eax >>> 0;
    if (base !== 0 && (max < base || max > base + 0x40)) continue;
    const last = Math.min(max, base + 0x40);
    for (let leaf = base; leaf <= last; leaf++) {
      const sub0 = leaf === base ? first : query(leaf, 0);
      table.push(...subleafCount(leaf, sub0, query));
    }
  }
  return table;
}

export function findCpuid(table: readonly CpuidEntry[], leaf: number, subleaf = 0): CpuidEntry | undefined {
  return table.find((e) => e.leaf === leaf && e.subleaf === subleaf) ?? table.find((e) => e.leaf === leaf && e.subleaf === 0);
}

/** AT_HWCAP on x86-64 Linux is CPUID.1:EDX. */
export function hwcapFromCpuid(table: readonly CpuidEntry[]): number {
  return (findCpuid(table, 1)?.edx ?? 0) >>> 0;
}

export function cpuidHasAvx2(table: readonly CpuidEntry[]): boolean {
  return ((findCpuid(table, 7, 0)?.ebx ?? 0) & (1 << 5)) !== 0;
}
