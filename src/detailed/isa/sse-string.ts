/**
 * SSE4.2 string compares: pcmpistri, pcmpistrm, pcmpestri, pcmpestrm (and the REX.W forms of
 * the explicit-length ones). glibc's strcspn/strspn/strpbrk use pcmpistri when CPUID has
 * SSE4.2. Memory operands need no alignment.
 *
 * imm8: [1:0] element format (unsigned/signed bytes/words), [3:2] aggregation (equal any,
 * ranges, equal each, equal ordered), [5:4] polarity, [6] index: most significant / mask:
 * expanded. Flags: CF = result ≠ 0, ZF = second operand shorter than a full register, SF = first
 * operand shorter, OF = result bit 0, AF = PF = 0.
 */
import { Mnemonic } from 'iced-x86';
import { Gpr } from '../../guest/threadContext.js';
import type { DecodeInfo } from '../decodeInfo.js';
import { setEager } from '../flags.js';
import { CF, OF, SF, ZF, type CpuState } from '../state.js';
import { define, type Exec } from './registry.js';
import { imm8, loadSrc, rejectMmx, S16, S8, SI16, SI8, xmmReg } from './sse-common.js';

const A = new Int32Array(16);
const B = new Int32Array(16);

/** Length of an implicit-length operand: index of the first zero element. */
function implicitLength(v: Int32Array, n: number): number {
  for (let i = 0; i < n; i++) if (v[i] === 0) return i;
  return n;
}

function explicitLength(s: CpuState, reg: number, wide: boolean, n: number): number {
  const lo = s.g[reg * 2]!;
  let v: number;
  if (wide) {
    const hi = s.g[reg * 2 + 1]!;
    // |value| saturates at n; anything with a significant high half is out of range.
    if (hi === 0 || hi === -1) v = hi === 0 ? lo >>> 0 : lo | 0;
    else return n;
    if (hi === -1 && lo >= 0) return n; // below -2^31
  } else {
    v = lo | 0;
  }
  const a = Math.abs(v);
  return a > n ? n : a;
}

/** IntRes2 (as a bit mask) of the comparison of A (first operand) with B (second). */
function compare(imm: number, n: number, la: number, lb: number): number {
  const agg = (imm >> 2) & 3;
  let res = 0;
  switch (agg) {
    case 0: // equal any
      for (let i = 0; i < lb; i++) {
        for (let j = 0; j < la; j++) {
          if (A[j] === B[i]) {
            res |= 1 << i;
            break;
          }
        }
      }
      break;
    case 1: // ranges
      for (let i = 0; i < lb; i++) {
        for (let j = 0; j + 1 < la; j += 2) {
          if (B[i]! >= A[j]! && B[i]! <= A[j + 1]!) {
            res |= 1 << i;
            break;
          }
        }
      }
      break;
    case 2: // equal each
      for (let i = 0; i < n; i++) {
        const va = i < la;
        const vb = i < lb;
        if (va && vb ? A[i] === B[i] : !va && !vb) res |= 1 << i;
      }
      break;
    default: // equal ordered (substring)
      for (let i = 0; i < n; i++) {
        let ok = true;
        for (let k = 0; k < n - i; k++) {
          if (k >= la) break; // needle exhausted: true from here on
          if (i + k >= lb || A[k] !== B[i + k]) {
            ok = false;
            break;
          }
        }
        if (ok) res |= 1 << i;
      }
  }
  const full = (1 << n) - 1;
  switch ((imm >> 4) & 3) {
    case 1:
      return ~res & full;
    case 3:
      return (res ^ ((1 << lb) - 1)) & full;
    default:
      return res;
  }
}

function build(explicit: boolean, wide: boolean, mask: boolean) {
  return (d: DecodeInfo): Exec => {
    rejectMmx(d);
    const a = xmmReg(d, 0);
    const load = loadSrc(d, 1, 16, true);
    const imm = imm8(d, 2);
    const words = (imm & 1) !== 0;
    const signed = (imm & 2) !== 0;
    const n = words ? 8 : 16;
    return (s) => {
      load(s);
      // Elements of both operands (B from the scratch, A from the register).
      for (let i = 0; i < n; i++) {
        B[i] = words ? (signed ? SI16[i]! : S16[i]!) : signed ? SI8[i]! : S8[i]!;
      }
      const x = s.xmm8;
      for (let i = 0; i < n; i++) {
        const o = a * 16 + i * (words ? 2 : 1);
        let v = words ? x[o]! | (x[o + 1]! << 8) : x[o]!;
        if (signed) v = words ? (v << 16) >> 16 : (v << 24) >> 24;
        A[i] = v;
      }
      const la = explicit ? explicitLength(s, Gpr.rax, wide, n) : implicitLength(A, n);
      const lb = explicit ? explicitLength(s, Gpr.rdx, wide, n) : implicitLength(B, n);
      const res = compare(imm, n, la, lb);
      if (mask) {
        const o = 0; // xmm0
        if (imm & 0x40) {
          for (let i = 0; i < n; i++) {
            const v = (res >> i) & 1 ? 0xff : 0;
            if (words) {
              x[o + 2 * i] = v;
              x[o + 2 * i + 1] = v;
            } else x[o + i] = v;
          }
        } else {
          s.xmm32[0] = res;
          s.xmm32[1] = 0;
          s.xmm32[2] = 0;
          s.xmm32[3] = 0;
        }
      } else {
        let idx = n;
        if (res !== 0) idx = imm & 0x40 ? 31 - Math.clz32(res) : 31 - Math.clz32(res & -res);
        s.g[Gpr.rcx * 2] = idx;
        s.g[Gpr.rcx * 2 + 1] = 0;
      }
      setEager(s, (res !== 0 ? CF : 0) | (lb < n ? ZF : 0) | (la < n ? SF : 0) | (res & 1 ? OF : 0));
    };
  };
}

define(Mnemonic.Pcmpistri, build(false, false, false));
define(Mnemonic.Pcmpistrm, build(false, false, true));
define(Mnemonic.Pcmpestri, build(true, false, false));
define(Mnemonic.Pcmpestrm, build(true, false, true));
define(Mnemonic.Pcmpestri64, build(true, true, false));
define(Mnemonic.Pcmpestrm64, build(true, true, true));
