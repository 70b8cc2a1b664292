/**
 * Host clock frequency, to turn host seconds into host cycles. There is no PMU on these
 * machines (KVM-NOTES.md), so this is the nominal frequency the kernel reports; override it
 * with --host-freq where the nominal value is wrong (turbo, power states).
 */
import { readFileSync } from 'node:fs';

export interface HostFrequency {
  hz: number;
  source: string;
}

export function detectHostFrequency(): HostFrequency {
  const sysfs = '/sys/devices/system/cpu/cpu0/cpufreq/base_frequency';
  for (const [file, scale] of [[sysfs, 1000], ['/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq', 1000]] as const) {
    try {
      const khz = Number(readFileSync(file, 'utf8').trim());
      if (khz > 0) return { hz: khz * scale, source: file };
    } catch {
      /* not present in VMs */
    }
  }
  try {
    const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
    const mhz = /^cpu MHz\s*:\s*([\d.]+)/m.exec(cpuinfo);
    if (mhz && Number(mhz[1]) > 0) return { hz: Math.round(Number(mhz[1]) * 1e6), source: '/proc/cpuinfo cpu MHz' };
    const ghz = /^model name\s*:.*@\s*([\d.]+)GHz/m.exec(cpuinfo);
    if (ghz) return { hz: Math.round(Number(ghz[1]) * 1e9), source: '/proc/cpuinfo model name' };
  } catch {
    /* not Linux */
  }
  return { hz: 2e9, source: 'default (could not detect; pass --host-freq)' };
}
