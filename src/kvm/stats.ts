/** Statistics of the KVM CPU, gem5-style: host time, exits, syscalls and estimated guest cycles. */
import type { Stat } from '../stats.js';

export interface KvmStats {
  model: 'kvm';
  /** Host seconds spent inside KVM_RUN (guest execution plus exit overhead). */
  hostRunSeconds: number;
  /** Host seconds spent emulating syscalls and handling exits outside KVM_RUN. */
  hostEmulationSeconds: number;
  hostFreqHz: number;
  hostFactor: number;
  /** KVM_RUN calls. */
  runs: number;
  /** Exits by reason name. */
  exits: Record<string, number>;
  syscalls: number;
  /** Syscalls by name. */
  syscallsByName: Record<string, number>;
  /** Times the vCPU was kicked out of KVM_RUN for a quantum, pause or time limit. */
  kicks: number;
  /** Memory-slot reloads to drop stale translations after munmap/mprotect. */
  tlbFlushes: number;
  /** m5ops by name (both forms). */
  m5ops: Record<string, number>;
}

export function emptyKvmStats(hostFreqHz: number, hostFactor: number): KvmStats {
  return {
    model: 'kvm',
    hostRunSeconds: 0,
    hostEmulationSeconds: 0,
    hostFreqHz,
    hostFactor,
    runs: 0,
    exits: {},
    syscalls: 0,
    syscallsByName: {},
    kicks: 0,
    tlbFlushes: 0,
    m5ops: {},
  };
}

export function hostCycles(s: KvmStats): number {
  return Math.round(s.hostRunSeconds * s.hostFreqHz);
}

/** Guest cycles = host cycles × hostFactor (DESIGN.md §6). */
export function estimatedGuestCycles(s: KvmStats): number {
  return Math.round(hostCycles(s) * s.hostFactor);
}

export function kvmStatsList(s: KvmStats, prefix = 'system.cpu'): Stat[] {
  const guestCycles = estimatedGuestCycles(s);
  const stats: Stat[] = [
    { name: 'simSeconds', value: guestCycles / s.hostFreqHz, desc: 'Guest seconds: estimated guest cycles at the guest clock (= host frequency)', unit: 's' },
    { name: 'hostSeconds', value: s.hostRunSeconds + s.hostEmulationSeconds, desc: 'Host seconds in KVM_RUN plus exit handling', unit: 's' },
    { name: `${prefix}.hostRunSeconds`, value: s.hostRunSeconds, desc: 'Host seconds inside KVM_RUN', unit: 's' },
    { name: `${prefix}.hostEmulationSeconds`, value: s.hostEmulationSeconds, desc: 'Host seconds emulating syscalls and handling exits', unit: 's' },
    { name: `${prefix}.hostFreqHz`, value: s.hostFreqHz, desc: 'Host clock frequency used to convert host time to cycles', unit: 'Hz' },
    { name: `${prefix}.hostFactor`, value: s.hostFactor, desc: 'Guest cycles per host cycle' },
    { name: `${prefix}.hostCycles`, value: hostCycles(s), desc: 'Host cycles inside KVM_RUN (host seconds x host frequency)', unit: 'Cycle' },
    { name: `${prefix}.numCycles`, value: guestCycles, desc: 'Estimated guest cycles (host cycles x hostFactor)', unit: 'Cycle' },
    { name: `${prefix}.kvmRuns`, value: s.runs, desc: 'KVM_RUN calls' },
    { name: `${prefix}.kicks`, value: s.kicks, desc: 'Times the vCPU was kicked out of KVM_RUN (quanta, pauses, limits)' },
    { name: `${prefix}.syscalls`, value: s.syscalls, desc: 'Syscalls emulated' },
    { name: `${prefix}.tlbFlushes`, value: s.tlbFlushes, desc: 'Memory-slot reloads after mappings were removed or downgraded' },
  ];
  for (const [reason, n] of Object.entries(s.exits).sort()) {
    stats.push({ name: `${prefix}.exits::${reason}`, value: n, desc: `KVM exits with reason ${reason}` });
  }
  for (const [name, n] of Object.entries(s.syscallsByName).sort()) {
    stats.push({ name: `${prefix}.syscalls::${name}`, value: n, desc: `Calls of syscall ${name}` });
  }
  for (const [name, n] of Object.entries(s.m5ops).sort()) {
    stats.push({ name: `${prefix}.m5ops::${name}`, value: n, desc: `m5op ${name} executed` });
  }
  return stats;
}
