/**
 * Deterministic pseudo-random numbers, written here so that output never depends on a library version.
 *
 * Two kinds of randomness are used by the generator:
 * - keyed draws (`drawUnit(key, a, b)`): a hash of a key and a few integers, for values that must be
 *   reproducible in isolation: the noise of one meter in one interval is the same whatever range,
 *   fleet size or call order produced it (random access, no hidden state);
 * - a sequential stream (`mulberry32`), for a meter's fixed parameters drawn once.
 *
 * Neither is cryptographic.
 */

const TWO_POW_32 = 4294967296;

/** MurmurHash3's 32-bit finalizer: a bijective mix with full avalanche. */
export function fmix32(value: number): number {
  let h = value >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** 32-bit hash of a text (FNV-1a over UTF-16 code units, then `fmix32`). */
export function hashText(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h);
}

/**
 * 32-bit hash of a key and integers. Each value is reduced modulo 2^32 after splitting off its high part,
 * so epoch minutes, day numbers and small tags all mix without collisions between positions.
 */
export function hashInts(key: number, ...values: number[]): number {
  let h = fmix32(key ^ 0x9e3779b9);
  for (const value of values) {
    const high = Math.floor(value / TWO_POW_32);
    h = fmix32(h ^ fmix32((value >>> 0) + 0x7f4a7c15));
    h = fmix32(h ^ fmix32(high + 0x2545f491));
  }
  return h;
}

/** A keyed draw, uniform in [0, 1). */
export function drawUnit(key: number, ...values: number[]): number {
  return hashInts(key, ...values) / TWO_POW_32;
}

/** A keyed draw from the standard normal distribution (Box-Muller over two keyed uniforms). */
export function drawGaussian(key: number, ...values: number[]): number {
  const u1 = (hashInts(key, ...values, 1) + 1) / (TWO_POW_32 + 1); // (0, 1): log never sees 0
  const u2 = hashInts(key, ...values, 2) / TWO_POW_32;
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

/** A sequential generator of uniforms in [0, 1) (mulberry32: 32-bit state, period 2^32). */
export type UnitStream = () => number;

export function mulberry32(seed: number): UnitStream {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / TWO_POW_32;
  };
}

/** Uniform in [min, max). */
export function between(unit: number, min: number, max: number): number {
  return min + unit * (max - min);
}

/** Picks a value by weight with one uniform draw. */
export function pickWeighted<T>(unit: number, choices: ReadonlyArray<readonly [T, number]>): T {
  const total = choices.reduce((sum, [, weight]) => sum + weight, 0);
  let threshold = unit * total;
  for (const [value, weight] of choices) {
    if (threshold < weight) return value;
    threshold -= weight;
  }
  return choices[choices.length - 1][0];
}

/** The key of one meter's randomness: every draw about that meter starts from it. */
export function meterKey(seed: string, meterId: string): number {
  return hashText(`${seed}\u0000${meterId}`);
}
