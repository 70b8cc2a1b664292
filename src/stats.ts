/**
 * gem5-style statistics: every stat has a name, a value and a one-line description, and is
 * written as `stats.txt` (`name value # description`) and as JSON. Shared by all CPU models.
 */
import { writeFileAtomic } from './util/atomicWrite.js';
import path from 'node:path';
import { mkdirSync } from 'node:fs';

export interface Stat {
  name: string;
  value: number | string;
  desc: string;
  unit?: string;
}

export function formatStatsTxt(stats: readonly Stat[]): string {
  const width = Math.max(40, ...stats.map((s) => s.name.length + 2));
  const lines = ['', '---------- Begin Simulation Statistics ----------'];
  for (const s of stats) {
    const value = typeof s.value === 'number' ? formatNumber(s.value) : s.value;
    const unit = s.unit ? ` (${s.unit})` : '';
    lines.push(`${s.name.padEnd(width)}${value.padStart(20)}  # ${s.desc}${unit}`);
  }
  lines.push('', '---------- End Simulation Statistics   ----------', '');
  return lines.join('\n');
}

function formatNumber(v: number): string {
  if (Number.isInteger(v)) return String(v);
  return v.toPrecision(9).replace(/\.?0+$/, '');
}

export function statsToJson(stats: readonly Stat[]): Record<string, { value: number | string; desc: string; unit?: string }> {
  const out: Record<string, { value: number | string; desc: string; unit?: string }> = {};
  for (const s of stats) out[s.name] = s.unit ? { value: s.value, desc: s.desc, unit: s.unit } : { value: s.value, desc: s.desc };
  return out;
}

/** Writes `stats.txt` and `stats.json` into `dir` (created if missing), each atomically. */
export function writeStats(dir: string, stats: readonly Stat[]): void {
  mkdirSync(dir, { recursive: true });
  writeFileAtomic(path.join(dir, 'stats.txt'), formatStatsTxt(stats));
  writeFileAtomic(path.join(dir, 'stats.json'), JSON.stringify(statsToJson(stats), null, 2) + '\n');
}

/**
 * Writes several dumps (gem5: each m5 dump_stats, then the final one) as consecutive blocks of
 * `stats.txt`, and `stats.json` as the last dump's map with the earlier ones under "dumps".
 */
export function writeStatsDumps(dir: string, dumps: readonly (readonly Stat[])[]): void {
  if (dumps.length <= 1) {
    writeStats(dir, dumps[0] ?? []);
    return;
  }
  mkdirSync(dir, { recursive: true });
  writeFileAtomic(path.join(dir, 'stats.txt'), dumps.map((d) => formatStatsTxt(d)).join(''));
  const json = { ...statsToJson(dumps[dumps.length - 1]!), dumps: dumps.slice(0, -1).map((d) => statsToJson(d)) };
  writeFileAtomic(path.join(dir, 'stats.json'), JSON.stringify(json, null, 2) + '\n');
}
