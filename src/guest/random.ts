/**
 * The guest's only source of randomness (getrandom, AT_RANDOM, /dev/urandom): xoshiro128**
 * seeded through splitmix64 from the run's `--seed`, so a run is reproducible. The state is
 * four 32-bit words and travels in ProcessState.
 */

export type RandomState = [number, number, number, number];

export class GuestRandom {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  private constructor(state: RandomState) {
    [this.s0, this.s1, this.s2, this.s3] = state;
  }

  static fromSeed(seed: bigint): GuestRandom {
    let x = BigInt.asUintN(64, seed);
    const words: number[] = [];
    for (let i = 0; i < 2; i++) {
      // splitmix64
      x = BigInt.asUintN(64, x + 0x9e3779b97f4a7c15n);
      let z = x;
      z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
      z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn);
      z ^= z >> 31n;
      words.push(Number(z & 0xffffffffn), Number(z >> 32n));
    }
    // xoshiro must not start from the all-zero state.
    if (!words.some((w) => w !== 0)) words[0] = 1;
    return new GuestRandom(words as RandomState);
  }

  static restore(state: RandomState): GuestRandom {
    return new GuestRandom([...state] as RandomState);
  }

  snapshot(): RandomState {
    return [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0];
  }

  /** Next 32-bit output (unsigned). */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Fills `out` with random bytes. */
  fill(out: Uint8Array): void {
    let i = 0;
    for (; i + 4 <= out.length; i += 4) {
      const w = this.nextU32();
      out[i] = w & 0xff;
      out[i + 1] = (w >>> 8) & 0xff;
      out[i + 2] = (w >>> 16) & 0xff;
      out[i + 3] = w >>> 24;
    }
    if (i < out.length) {
      let w = this.nextU32();
      for (; i < out.length; i++, w >>>= 8) out[i] = w & 0xff;
    }
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    this.fill(out);
    return out;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
