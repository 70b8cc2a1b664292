/**
 * Comparing the oracle (KVM) with a JS core: registers, rip, rflags (minus the flags the
 * architecture leaves undefined, flagsMask.ts), fs/gs base, xmm0–15, MXCSR, x87 control state,
 * memory ranges, and how a run ended. Each difference is a named field with both values,
 * formatted for a reproducer.
 */
import { GPR_NAMES, type ThreadContext } from '../guest/threadContext.js';
import { flagNames, IGNORED_RFLAGS } from './flagsMask.js';
import type { SnippetEnd } from './snippetMemory.js';

export interface FieldDiff {
  field: string;
  kvm: string;
  js: string;
  note?: string;
}

export interface CompareOptions {
  /** Ignore MXCSR's sticky exception flags (bits 0–5). Default false: they are architectural. */
  ignoreMxcsrFlags?: boolean;
  /** Compare x87 fcw/fsw/ftw and st0–7 (default true). fip/fdp/fop are never compared. */
  x87?: boolean;
  /** Registers not to compare (e.g. rcx/r11 at a syscall stop). */
  skipGprs?: readonly number[];
}

const hex64 = (v: bigint) => `0x${v.toString(16).padStart(16, '0')}`;

function xmmText(b: Uint8Array): string {
  const dv = new DataView(b.buffer, b.byteOffset, 16);
  const hi = dv.getBigUint64(8, true).toString(16).padStart(16, '0');
  const lo = dv.getBigUint64(0, true).toString(16).padStart(16, '0');
  const d = `${dv.getFloat64(8, true)} ${dv.getFloat64(0, true)}`;
  const f = [3, 2, 1, 0].map((i) => dv.getFloat32(i * 4, true)).join(' ');
  return `${hi}_${lo}  (f64: ${d}; f32: ${f})`;
}

/** Differences between two contexts; `undefinedFlags` are arithmetic flags not compared. */
export function compareContexts(kvm: ThreadContext, js: ThreadContext, undefinedFlags: number, opts: CompareOptions = {}): FieldDiff[] {
  const out: FieldDiff[] = [];
  for (let i = 0; i < 16; i++) {
    if (opts.skipGprs?.includes(i)) continue;
    const a = kvm.gpr[i]!;
    const b = js.gpr[i]!;
    if (a !== b) out.push({ field: GPR_NAMES[i]!, kvm: hex64(a), js: hex64(b) });
  }
  if (kvm.rip !== js.rip) out.push({ field: 'rip', kvm: hex64(kvm.rip), js: hex64(js.rip) });
  const mask = ~BigInt(IGNORED_RFLAGS | undefinedFlags) & ((1n << 64n) - 1n);
  if ((kvm.rflags & mask) !== (js.rflags & mask)) {
    const diff = Number((kvm.rflags ^ js.rflags) & mask);
    out.push({
      field: 'rflags',
      kvm: `0x${kvm.rflags.toString(16)} [${flagNames(Number(kvm.rflags & 0x3fffffn))}]`,
      js: `0x${js.rflags.toString(16)} [${flagNames(Number(js.rflags & 0x3fffffn))}]`,
      note: `differs in ${flagNames(diff)}${undefinedFlags ? `; not compared (undefined): ${flagNames(undefinedFlags)}` : ''}`,
    });
  }
  if (kvm.fsBase !== js.fsBase) out.push({ field: 'fs.base', kvm: hex64(kvm.fsBase), js: hex64(js.fsBase) });
  if (kvm.gsBase !== js.gsBase) out.push({ field: 'gs.base', kvm: hex64(kvm.gsBase), js: hex64(js.gsBase) });
  if (!bytesEqual(kvm.xmm, js.xmm)) {
    for (let i = 0; i < 16; i++) {
      const a = kvm.xmm.subarray(i * 16, i * 16 + 16);
      const b = js.xmm.subarray(i * 16, i * 16 + 16);
      if (!bytesEqual(a, b)) out.push({ field: `xmm${i}`, kvm: xmmText(a), js: xmmText(b) });
    }
  }
  const mxMask = opts.ignoreMxcsrFlags ? ~0x3f : ~0;
  if ((kvm.mxcsr & mxMask) !== (js.mxcsr & mxMask)) {
    out.push({ field: 'mxcsr', kvm: `0x${kvm.mxcsr.toString(16)}`, js: `0x${js.mxcsr.toString(16)}`, note: mxcsrNote(kvm.mxcsr ^ js.mxcsr) });
  }
  if (opts.x87 !== false) {
    const x = kvm.x87;
    const y = js.x87;
    if (x.fcw !== y.fcw) out.push({ field: 'x87.fcw', kvm: `0x${x.fcw.toString(16)}`, js: `0x${y.fcw.toString(16)}` });
    if (x.fsw !== y.fsw) out.push({ field: 'x87.fsw', kvm: `0x${x.fsw.toString(16)}`, js: `0x${y.fsw.toString(16)}` });
    if (x.ftw !== y.ftw) out.push({ field: 'x87.ftw', kvm: `0x${x.ftw.toString(16)}`, js: `0x${y.ftw.toString(16)}` });
    // st(i) is relative to TOP (FXSAVE order); the abridged tag word is by physical register.
    const top = (x.fsw >> 11) & 7;
    for (let i = 0; i < 8 && (x.ftw | y.ftw) !== 0; i++) {
      const a = x.st.subarray(i * 10, i * 10 + 10);
      const b = y.st.subarray(i * 10, i * 10 + 10);
      if (((x.ftw | y.ftw) >> ((top + i) & 7)) & 1 && !bytesEqual(a, b)) {
        out.push({ field: `st${i}`, kvm: Buffer.from(a).toString('hex'), js: Buffer.from(b).toString('hex') });
      }
    }
  }
  return out;
}

function mxcsrNote(diff: number): string {
  const names: [number, string][] = [
    [0x1, 'IE'], [0x2, 'DE'], [0x4, 'ZE'], [0x8, 'OE'], [0x10, 'UE'], [0x20, 'PE'], [0x40, 'DAZ'],
    [0x1f80, 'masks'], [0x6000, 'RC'], [0x8000, 'FTZ'],
  ];
  return `differs in ${names.filter(([b]) => diff & b).map(([, n]) => n).join(' ')}`;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  if (a.length <= 64) {
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

/** Differing byte runs of two equally long areas starting at guest address `base`. */
export function compareMemory(name: string, base: number, kvm: Uint8Array, js: Uint8Array, maxRuns = 8): FieldDiff[] {
  if (bytesEqual(kvm, js)) return [];
  const out: FieldDiff[] = [];
  let i = 0;
  const n = Math.min(kvm.length, js.length);
  while (i < n && out.length < maxRuns) {
    if (kvm[i] === js[i]) {
      i++;
      continue;
    }
    let j = i;
    while (j < n && (kvm[j] !== js[j] || (j + 1 < n && kvm[j + 1] !== js[j + 1]))) j++;
    const end = Math.min(j, i + 32);
    out.push({
      field: `${name}[0x${(base + i).toString(16)}..0x${(base + end).toString(16)})`,
      kvm: Buffer.from(kvm.subarray(i, end)).toString('hex'),
      js: Buffer.from(js.subarray(i, end)).toString('hex'),
    });
    i = j;
  }
  return out;
}

export function describeEnd(e: SnippetEnd, terminator?: number): string {
  if (terminator !== undefined && e.vector === 6 && e.rip === BigInt(terminator)) return 'completed (#UD at the terminator)';
  const names: Record<number, string> = { 0: '#DE', 1: '#DB', 3: '#BP', 6: '#UD', 13: '#GP', 14: '#PF', 17: '#AC', 19: '#XM' };
  const v = names[e.vector] ?? `vector ${e.vector}`;
  return `${v} at 0x${e.rip.toString(16)}${e.vector === 14 ? ` (address 0x${e.faultAddress.toString(16)}, error ${e.errorCode})` : e.vector === 13 ? ` (error ${e.errorCode})` : ''}`;
}

export function compareEnds(kvm: SnippetEnd, js: SnippetEnd, terminator?: number): FieldDiff[] {
  const same = kvm.vector === js.vector && kvm.rip === js.rip && (kvm.vector !== 14 || (kvm.faultAddress === js.faultAddress && kvm.errorCode === js.errorCode));
  return same ? [] : [{ field: 'end', kvm: describeEnd(kvm, terminator), js: describeEnd(js, terminator) }];
}

export function formatDiffs(diffs: readonly FieldDiff[], indent = '  '): string {
  const w = Math.max(5, ...diffs.map((d) => d.field.length));
  return diffs
    .map((d) => `${indent}${d.field.padEnd(w)}  kvm ${d.kvm}\n${indent}${' '.repeat(w)}  js  ${d.js}${d.note ? `\n${indent}${' '.repeat(w)}  (${d.note})` : ''}`)
    .join('\n');
}
