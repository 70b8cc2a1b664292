/**
 * cond()'s fast paths (64-bit cmp, logic ops, inc/dec/add then jz/jnz) against the general rule:
 * the six flags from arithFlags (checked against KVM by the difftests), then the condition from
 * them. Random operands plus the edge values where signed and unsigned orders part.
 */
import { describe, expect, it } from 'vitest';
import { arithFlags, cond } from '../../src/detailed/flags.js';
import { CcOp, CF, CpuState, OF, PF, SF, ZF } from '../../src/detailed/state.js';
import { Rng } from '../../src/difftest/rng.js';

function byFlags(f: number, cc: number): boolean {
  const bit = (m: number) => (f & m) !== 0;
  const r = [
    bit(OF), bit(CF), bit(ZF), bit(CF) || bit(ZF), bit(SF), bit(PF), bit(SF) !== bit(OF), bit(ZF) || bit(SF) !== bit(OF),
  ][cc >> 1]!;
  return (cc & 1) === 0 ? r : !r;
}

const EDGES = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffe, 0x80000001];

describe('cond fast paths agree with the flags', () => {
  it('for 64-bit sub/cmp, logic ops of every size, and inc/dec/add', () => {
    const rng = new Rng(7);
    const s = new CpuState();
    const half = () => (rng.u32() % 4 === 0 ? EDGES[rng.u32() % EDGES.length]! : rng.u32() >>> 0);
    const MASK = [0, 0xff, 0xffff, 0, 0xffffffff];
    let checked = 0;
    for (let i = 0; i < 20_000; i++) {
      const op = [CcOp.Sub, CcOp.Logic, CcOp.Dec, CcOp.Inc, CcOp.Add][i % 5]!;
      const size = op === CcOp.Sub && i % 2 === 0 ? 8 : [1, 2, 4, 8][rng.u32() % 4]!;
      const m = size === 8 ? 0xffffffff : MASK[size]!;
      s.ccOp = op;
      s.ccSize = size;
      s.ccA = half() & m;
      s.ccAHi = size === 8 ? half() : 0;
      s.ccB = rng.u32() % 3 === 0 ? s.ccA : half() & m;
      s.ccBHi = size === 8 ? (rng.u32() % 3 === 0 ? s.ccAHi : half()) : 0;
      s.ccC = op === CcOp.Dec || op === CcOp.Inc ? rng.u32() & CF : 0;
      // The result as the producers record it: unsigned halves, masked to the size.
      const lo = op === CcOp.Sub ? s.ccA - s.ccB : op === CcOp.Logic ? (s.ccA & s.ccB) : s.ccA + (op === CcOp.Dec ? -1 : 1);
      const carry = lo < 0 ? -1 : lo > m ? 1 : 0;
      s.ccRes = (lo >>> 0) & m;
      s.ccResHi = size === 8 ? (op === CcOp.Logic ? (s.ccAHi & s.ccBHi) >>> 0 : op === CcOp.Sub ? (s.ccAHi - s.ccBHi + carry) >>> 0 : (s.ccAHi + carry) >>> 0) : 0;
      if (op === CcOp.Dec || op === CcOp.Inc) {
        s.ccB = 1;
        s.ccBHi = 0;
      }
      const f = arithFlags(s);
      for (let cc = 0; cc < 16; cc++) {
        expect(cond(s, cc), `op ${op} size ${size} a ${s.ccAHi}:${s.ccA} b ${s.ccBHi}:${s.ccB} cc ${cc}`).toBe(byFlags(f, cc));
        checked++;
      }
    }
    expect(checked).toBe(320_000);
  });
});
