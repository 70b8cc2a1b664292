/**
 * Bit instructions: bt/bts/btr/btc (register and memory forms with bit-string addressing),
 * bsf/bsr, tzcnt/lzcnt/popcnt, and BMI1/BMI2 andn/bextr/blsi/blsmsk/blsr/bzhi/pdep/pext.
 * Undefined flags take the values Intel hardware gives (checked against KVM).
 */
import { Mnemonic } from 'iced-x86';
import { arithFlags, PARITY, setEager } from '../flags.js';
import { operand } from '../operands.js';
import { CF, PF, SF, ZF, type CpuState } from '../state.js';
import type { DecodeInfo } from '../decodeInfo.js';
import { define, NotImplemented, type Exec } from './registry.js';
import { addAddr, MASK, szp, szp64 } from './int-common.js';

// --- bt / bts / btr / btc

type BtKind = 'bt' | 'bts' | 'btr' | 'btc';

/** The new value of a 32-bit chunk after the bit operation on `m` (a single-bit mask). */
function btApply(kind: BtKind, v: number, m: number): number {
  switch (kind) {
    case 'bts':
      return (v | m) >>> 0;
    case 'btr':
      return (v & ~m) >>> 0;
    case 'btc':
      return (v ^ m) >>> 0;
    default:
      return v;
  }
}

/** CF = the bit; the other flags keep their values (OF/SF/AF/PF are undefined, ZF unaffected). */
function btFlags(s: CpuState, bit: number): void {
  setEager(s, (arithFlags(s) & ~CF) | bit);
}

/** Reads the chunk at `addr`; `rmw`: it will be written back (fault as a write). */
function readSized(s: CpuState, addr: number, size: number, rmw: boolean): number {
  const m = s.mem;
  if (size === 2) return rmw ? m.rmw16(addr) : m.read16(addr);
  if (size === 4) return rmw ? m.rmw32(addr) : m.read32(addr);
  const lo = rmw ? m.rmw64(addr) : m.read64(addr);
  s.hi = m.hi;
  return lo;
}

function writeSized(s: CpuState, addr: number, size: number, lo: number, hi: number): void {
  const m = s.mem;
  if (size === 2) m.write16(addr, lo & 0xffff);
  else if (size === 4) m.write32(addr, lo >>> 0);
  else m.write64(addr, lo >>> 0, hi >>> 0);
}

function btBuilder(kind: BtKind) {
  const writes = kind !== 'bt';
  return (d: DecodeInfo): Exec => {
    const dst = operand(d, 0, undefined, writes);
    const size = dst.size;
    const bits = size * 8;
    const srcK = d.ops[1];
    const get = dst.get;
    const set = dst.set;
    if (dst.kind === 'reg' || srcK?.kind === 'imm') {
      // The offset is taken modulo the operand width.
      let offset: (s: CpuState) => number;
      if (srcK?.kind === 'imm') {
        const k = Number(srcK.value & 0xffn) & (bits - 1);
        offset = () => k;
      } else {
        const sget = operand(d, 1).get;
        offset = (s) => sget(s) & (bits - 1);
      }
      if (size === 8) {
        return (s) => {
          const k = offset(s);
          let lo = get(s);
          let hi = s.hi;
          let bit: number;
          if (k >= 32) {
            const m = 1 << (k - 32);
            bit = (hi & m) !== 0 ? 1 : 0;
            hi = btApply(kind, hi, m);
          } else {
            const m = 1 << k;
            bit = (lo & m) !== 0 ? 1 : 0;
            lo = btApply(kind, lo, m);
          }
          if (writes) set(s, lo, hi);
          btFlags(s, bit);
        };
      }
      return (s) => {
        const k = offset(s);
        const v = get(s);
        const m = 1 << k;
        if (writes) set(s, btApply(kind, v, m), 0);
        btFlags(s, (v & m) !== 0 ? 1 : 0);
      };
    }
    // Memory destination, register offset: a signed bit offset into the bit string at the
    // operand's address; the operand-sized chunk holding the bit is read (and written).
    const ea = dst.ea!;
    const sget = operand(d, 1).get;
    return (s) => {
      const lo = sget(s);
      let offset: number;
      if (size === 8) {
        const hi = s.hi;
        offset = hi === ((lo | 0) >> 31) >>> 0 ? lo | 0 : Number(BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo)));
      } else {
        offset = ((lo << (32 - bits)) >> (32 - bits)) | 0;
      }
      const chunk = Math.floor(offset / bits);
      const k = offset - chunk * bits;
      const addr = addAddr(ea(s), chunk * size);
      let vlo = readSized(s, addr, size, writes);
      let vhi = s.hi;
      let bit: number;
      if (k >= 32) {
        const m = 1 << (k - 32);
        bit = (vhi & m) !== 0 ? 1 : 0;
        vhi = btApply(kind, vhi, m);
      } else {
        const m = 1 << k;
        bit = (vlo & m) !== 0 ? 1 : 0;
        vlo = btApply(kind, vlo, m);
      }
      if (writes) writeSized(s, addr, size, vlo, vhi);
      btFlags(s, bit);
    };
  };
}

define(Mnemonic.Bt, btBuilder('bt'));
define(Mnemonic.Bts, btBuilder('bts'));
define(Mnemonic.Btr, btBuilder('btr'));
define(Mnemonic.Btc, btBuilder('btc'));

// --- bit scans and counts

function ctz32(v: number): number {
  return v === 0 ? 32 : 31 - Math.clz32(v & -v);
}

/**
 * bsf/bsr: ZF = (source == 0); with a zero source the destination is left unchanged (all 64
 * bits). The other flags are undefined.
 */
function bitScan(reverse: boolean) {
  return (d: DecodeInfo): Exec => {
    const dst = operand(d, 0);
    const src = operand(d, 1);
    const get = src.get;
    const set = dst.set;
    const size = src.size;
    return (s) => {
      const lo = get(s);
      const hi = size === 8 ? s.hi : 0;
      const v = size === 8 ? lo : lo & MASK[size]!;
      if (v === 0 && hi === 0) {
        setEager(s, bsFlags(s, 0, true));
        return;
      }
      let r: number;
      if (reverse) r = hi !== 0 ? 63 - Math.clz32(hi) : 31 - Math.clz32(v);
      else r = v !== 0 ? ctz32(v) : 32 + ctz32(hi);
      set(s, r, 0);
      setEager(s, bsFlags(s, r, false));
    };
  };
}

/** Flags after bsf/bsr: ZF = (source == 0); Intel sets PF from the result (1 for a zero source) and clears the rest. */
function bsFlags(_s: CpuState, r: number, zero: boolean): number {
  return zero ? ZF | PF : PARITY[r]!;
}

define(Mnemonic.Bsf, bitScan(false));
define(Mnemonic.Bsr, bitScan(true));

/** tzcnt/lzcnt: CF = (source == 0), ZF = (result == 0), the rest cleared (as Intel does). */
function countZeros(leading: boolean) {
  return (d: DecodeInfo): Exec => {
    const dst = operand(d, 0);
    const src = operand(d, 1);
    const get = src.get;
    const set = dst.set;
    const size = src.size;
    const bits = size * 8;
    return (s) => {
      const lo = get(s);
      let r: number;
      if (size === 8) {
        const hi = s.hi;
        if (leading) r = hi !== 0 ? Math.clz32(hi) : 32 + Math.clz32(lo);
        else r = lo !== 0 ? ctz32(lo) : 32 + ctz32(hi);
      } else if (leading) {
        r = Math.clz32(lo) - (32 - bits);
      } else {
        r = Math.min(ctz32(lo), bits);
      }
      set(s, r, 0);
      setEager(s, (r === bits ? CF : 0) | (r === 0 ? ZF : 0));
    };
  };
}
define(Mnemonic.Tzcnt, countZeros(false));
define(Mnemonic.Lzcnt, countZeros(true));

function popcount32(v: number): number {
  v = v - ((v >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/** popcnt: ZF = (source == 0), the other five flags cleared. */
define(Mnemonic.Popcnt, (d) => {
  const dst = operand(d, 0);
  const src = operand(d, 1);
  const get = src.get;
  const set = dst.set;
  const size = src.size;
  return (s) => {
    const lo = get(s);
    const r = size === 8 ? popcount32(lo) + popcount32(s.hi) : popcount32(lo);
    set(s, r, 0);
    setEager(s, r === 0 ? ZF : 0);
  };
});

// --- BMI1 / BMI2

/** SF and ZF of a result (PF/AF undefined: left at 0 like the other cleared flags). */
function szOf(lo: number, hi: number, size: number): number {
  if (size === 8) return szp64(lo, hi) & (SF | ZF);
  return szp(lo, size) & (SF | ZF);
}

/** andn: ~src1 & src2; SF/ZF from the result, CF = OF = 0. */
define(Mnemonic.Andn, (d) => {
  const dst = operand(d, 0);
  const a = operand(d, 1).get;
  const b = operand(d, 2).get;
  const set = dst.set;
  const size = dst.size;
  return (s) => {
    const alo = a(s);
    const ahi = s.hi;
    const blo = b(s);
    const bhi = s.hi;
    const lo = (~alo & blo) >>> 0;
    const hi = size === 8 ? (~ahi & bhi) >>> 0 : 0;
    set(s, lo, hi);
    setEager(s, szOf(lo, hi, size) | bmiUndef(lo));
  };
});

/** What Intel leaves in the undefined AF/PF after BMI logic ops. */
function bmiUndef(_lo: number): number {
  return 0;
}

/** (lo, hi) >> n, n in 0–63. */
function shr64(lo: number, hi: number, n: number): [number, number] {
  if (n === 0) return [lo, hi];
  if (n < 32) return [((lo >>> n) | (hi << (32 - n))) >>> 0, hi >>> n];
  return [hi >>> (n - 32), 0];
}

/** Keeps the low n bits (0 ≤ n ≤ 64) of (lo, hi). */
function lowBits(lo: number, hi: number, n: number): [number, number] {
  if (n >= 64) return [lo, hi];
  if (n >= 32) return [lo, n === 32 ? 0 : (hi & ((1 << (n - 32)) - 1)) >>> 0];
  return [n === 0 ? 0 : (lo & (0xffffffff >>> (32 - n))) >>> 0, 0];
}

/** bextr: start = src2[7:0], length = src2[15:8]; ZF from the result, CF = OF = 0. */
define(Mnemonic.Bextr, (d) => {
  if (d.ops[2]?.kind === 'imm') throw new NotImplemented('TBM bextr with an immediate');
  const dst = operand(d, 0);
  const src = operand(d, 1).get;
  const ctl = operand(d, 2).get;
  const set = dst.set;
  const size = dst.size;
  const bits = size * 8;
  return (s) => {
    const lo = src(s);
    const hi = size === 8 ? s.hi : 0;
    const c = ctl(s);
    const start = c & 0xff;
    const len = (c >>> 8) & 0xff;
    let r: [number, number];
    if (start >= bits) r = [0, 0];
    else r = lowBits(...shr64(lo, hi, start), len);
    set(s, r[0], r[1]);
    setEager(s, r[0] === 0 && r[1] === 0 ? ZF : 0);
  };
});

/** blsi / blsmsk / blsr on (lo, hi): x & -x, x ^ (x - 1), x & (x - 1). */
function blsBuilder(kind: 'blsi' | 'blsmsk' | 'blsr') {
  return (d: DecodeInfo): Exec => {
    const dst = operand(d, 0);
    const get = operand(d, 1).get;
    const set = dst.set;
    const size = dst.size;
    return (s) => {
      const lo = get(s);
      const hi = size === 8 ? s.hi : 0;
      const zero = lo === 0 && hi === 0;
      // x - 1 on (lo, hi) within the operand width.
      const mlo = lo === 0 ? 0xffffffff : lo - 1;
      const mhi = size === 8 ? (lo === 0 ? (hi - 1) >>> 0 : hi) : 0;
      let rlo: number;
      let rhi: number;
      if (kind === 'blsi') {
        // -x = ~(x - 1)
        rlo = (lo & ~mlo) >>> 0;
        rhi = (hi & ~mhi) >>> 0;
      } else if (kind === 'blsmsk') {
        rlo = (lo ^ mlo) >>> 0;
        rhi = size === 8 ? (hi ^ mhi) >>> 0 : 0;
      } else {
        rlo = (lo & mlo) >>> 0;
        rhi = (hi & mhi) >>> 0;
      }
      set(s, rlo, rhi);
      let f = szOf(rlo, rhi, size);
      if (kind === 'blsmsk') f &= ~ZF;
      if (kind === 'blsi' ? !zero : zero) f |= CF;
      setEager(s, f);
    };
  };
}
define(Mnemonic.Blsi, blsBuilder('blsi'));
define(Mnemonic.Blsmsk, blsBuilder('blsmsk'));
define(Mnemonic.Blsr, blsBuilder('blsr'));

/** bzhi: clears the bits from index src2[7:0] up; CF = index beyond the operand. */
define(Mnemonic.Bzhi, (d) => {
  const dst = operand(d, 0);
  const src = operand(d, 1).get;
  const idx = operand(d, 2).get;
  const set = dst.set;
  const size = dst.size;
  const bits = size * 8;
  return (s) => {
    const lo = src(s);
    const hi = size === 8 ? s.hi : 0;
    const n = idx(s) & 0xff;
    const [rlo, rhi] = n < bits ? lowBits(lo, hi, n) : [lo, hi];
    set(s, rlo, rhi);
    setEager(s, szOf(rlo, rhi, size) | (n > bits - 1 ? CF : 0));
  };
});

function pdep32(src: number, mask: number): number {
  let r = 0;
  let k = 0;
  for (let m = mask >>> 0; m !== 0; m &= m - 1) {
    const low = m & -m;
    if ((src >>> k) & 1) r |= low;
    k++;
  }
  return r >>> 0;
}

function pext32(src: number, mask: number): number {
  let r = 0;
  let k = 0;
  for (let m = mask >>> 0; m !== 0; m &= m - 1) {
    const low = m & -m;
    if (src & low) r |= 1 << k;
    k++;
  }
  return r >>> 0;
}

function popcnt(v: number): number {
  return popcount32(v);
}

define(Mnemonic.Pdep, (d) => {
  const dst = operand(d, 0);
  const a = operand(d, 1).get;
  const b = operand(d, 2).get;
  const set = dst.set;
  const size = dst.size;
  return (s) => {
    const slo = a(s);
    const shi = s.hi;
    const mlo = b(s);
    const mhi = size === 8 ? s.hi : 0;
    const n = popcnt(mlo);
    const rlo = pdep32(slo, mlo);
    // Bits of the source beyond those deposited in the low half go to the high half.
    const rest = n === 32 ? shi : n === 0 ? slo : ((slo >>> n) | (shi << (32 - n))) >>> 0;
    const rhi = size === 8 ? pdep32(rest, mhi) : 0;
    set(s, rlo, rhi);
  };
});

define(Mnemonic.Pext, (d) => {
  const dst = operand(d, 0);
  const a = operand(d, 1).get;
  const b = operand(d, 2).get;
  const set = dst.set;
  const size = dst.size;
  return (s) => {
    const slo = a(s);
    const shi = s.hi;
    const mlo = b(s);
    const mhi = size === 8 ? s.hi : 0;
    const lowPart = pext32(slo, mlo);
    if (size !== 8) {
      set(s, lowPart, 0);
      return;
    }
    const n = popcnt(mlo);
    const highPart = pext32(shi, mhi);
    const rlo = n === 32 ? lowPart : (lowPart | (highPart << n)) >>> 0;
    const rhi = n === 0 ? 0 : n === 32 ? highPart : highPart >>> (32 - n);
    set(s, rlo, rhi);
  };
});
