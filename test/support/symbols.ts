/** Symbol lookups in built workloads (nm), to check fault reports against the binary itself. */
import { execFileSync } from 'node:child_process';

export interface Sym {
  name: string;
  address: bigint;
  size: bigint;
}

export function symbols(exe: string): Sym[] {
  const out = execFileSync('nm', ['-S', '--defined-only', exe], { encoding: 'utf8' });
  const syms: Sym[] = [];
  for (const line of out.split('\n')) {
    const m = /^([0-9a-f]+) ([0-9a-f]+) \w (\S+)$/.exec(line.trim());
    if (m) syms.push({ address: BigInt('0x' + m[1]), size: BigInt('0x' + m[2]), name: m[3]! });
  }
  return syms;
}

export function symbolAt(exe: string, address: bigint): string | undefined {
  return symbols(exe).find((s) => address >= s.address && address < s.address + s.size)?.name;
}

export function symbolAddress(exe: string, name: string): bigint {
  const s = symbols(exe).find((x) => x.name === name);
  if (!s) throw new Error(`no symbol ${name} in ${exe}`);
  return s.address;
}
