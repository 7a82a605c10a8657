import { describe, expect, it } from 'vitest';
import { addressKey, KeyedTokenBuckets } from './rate-limit.js';

function clock(start = 1_000) {
  let t = start;
  const now = () => t;
  return { now, advance: (ms: number) => (t += ms) };
}

describe('KeyedTokenBuckets', () => {
  it('allows a burst of `capacity`, then the sustained rate', () => {
    const c = clock();
    const b = new KeyedTokenBuckets({ capacity: 5, refillPerSecond: 2, maxKeys: 10, now: c.now });
    for (let i = 0; i < 5; i++) expect(b.take('d')).toBe(true);
    expect(b.take('d')).toBe(false);
    expect(b.waitMs('d')).toBe(500);
    c.advance(499);
    expect(b.take('d')).toBe(false);
    c.advance(1);
    expect(b.take('d')).toBe(true);
    expect(b.take('d')).toBe(false);
    // Over 10 s at 2/s: 20 more, never more than the capacity at once.
    c.advance(10_000);
    expect(b.tokens('d')).toBe(5);
    let taken = 0;
    while (b.take('d')) taken++;
    expect(taken).toBe(5);
  });

  it('a refusal takes nothing', () => {
    const c = clock();
    const b = new KeyedTokenBuckets({ capacity: 1, refillPerSecond: 1, maxKeys: 10, now: c.now });
    expect(b.take('d')).toBe(true);
    for (let i = 0; i < 100; i++) expect(b.take('d')).toBe(false);
    c.advance(1000);
    expect(b.take('d')).toBe(true);
  });

  it('keeps keys apart', () => {
    const c = clock();
    const b = new KeyedTokenBuckets({ capacity: 2, refillPerSecond: 1, maxKeys: 10, now: c.now });
    expect(b.take('a')).toBe(true);
    expect(b.take('a')).toBe(true);
    expect(b.take('a')).toBe(false);
    expect(b.take('b')).toBe(true);
    expect(b.take('b')).toBe(true);
    expect(b.take('b')).toBe(false);
  });

  it('give() returns a token, capped at capacity, and is a no-op for an unknown key', () => {
    const c = clock();
    const b = new KeyedTokenBuckets({ capacity: 3, refillPerSecond: 1 / 60, maxKeys: 10, now: c.now });
    b.take('a');
    b.take('a');
    b.take('a');
    expect(b.take('a')).toBe(false);
    b.give('a');
    expect(b.take('a')).toBe(true);
    b.give('a');
    b.give('a');
    b.give('a');
    b.give('a');
    expect(b.tokens('a')).toBe(3);
    b.give('nobody');
    expect(b.size).toBe(0); // the full bucket of 'a' was dropped too
  });

  it('drops buckets once they are full again: 100k one-off keys do not stay', () => {
    const c = clock();
    const b = new KeyedTokenBuckets({ capacity: 10, refillPerSecond: 10, maxKeys: 1_000_000, now: c.now });
    for (let i = 0; i < 100_000; i++) {
      b.take(`MTR-${i}`);
      c.advance(1); // 1 ms apart: each bucket is full again 100 ms after its one token
    }
    expect(b.size).toBeLessThanOrEqual(101);
    // After a pause every operation drops up to two stale buckets; sweep() drops them all at once.
    c.advance(1000);
    for (let i = 0; i < 30; i++) b.take('again');
    expect(b.size).toBeLessThanOrEqual(101 - 60 + 1);
    expect(b.size).toBeGreaterThan(1);
    expect(b.sweep()).toBeGreaterThan(0);
    expect(b.size).toBe(1); // 'again', not full
    c.advance(1000);
    expect(b.sweep()).toBe(1);
    expect(b.size).toBe(0);
  });

  it('a bucket that is not full stays even when older ones are dropped, and keeps its state', () => {
    const c = clock();
    const b = new KeyedTokenBuckets({ capacity: 2, refillPerSecond: 0.01, maxKeys: 100, now: c.now });
    b.take('slow');
    b.take('slow');
    for (let i = 0; i < 50; i++) b.take(`k${i}`);
    expect(b.take('slow')).toBe(false);
  });

  it('never holds more than maxKeys buckets (least recently used evicted first)', () => {
    const c = clock();
    const b = new KeyedTokenBuckets({ capacity: 1, refillPerSecond: 0.001, maxKeys: 3, now: c.now });
    for (const k of ['a', 'b', 'c']) expect(b.take(k)).toBe(true);
    expect(b.take('a')).toBe(false); // 'a' is now the most recently used
    expect(b.take('d')).toBe(true); // evicts 'b'
    expect(b.size).toBe(3);
    expect(b.take('a')).toBe(false); // kept
    expect(b.take('b')).toBe(true); // evicted earlier: a fresh bucket
    expect(b.size).toBe(3);
  });

  it('tolerates a clock that steps back', () => {
    const c = clock(10_000);
    const b = new KeyedTokenBuckets({ capacity: 1, refillPerSecond: 1, maxKeys: 10, now: c.now });
    expect(b.take('a')).toBe(true);
    c.advance(-5_000);
    expect(b.take('a')).toBe(false);
    c.advance(6_000);
    expect(b.take('a')).toBe(true);
  });

  it('rejects nonsensical limits', () => {
    expect(() => new KeyedTokenBuckets({ capacity: 0, refillPerSecond: 1, maxKeys: 1 })).toThrow(RangeError);
    expect(() => new KeyedTokenBuckets({ capacity: 1, refillPerSecond: 0, maxKeys: 1 })).toThrow(RangeError);
    expect(() => new KeyedTokenBuckets({ capacity: 1, refillPerSecond: 1, maxKeys: 0 })).toThrow(RangeError);
  });
});

describe('addressKey', () => {
  it('keys IPv4 as is and unwraps IPv4-mapped IPv6', () => {
    expect(addressKey('192.0.2.7')).toBe('192.0.2.7');
    expect(addressKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(addressKey('::FFFF:127.0.0.1')).toBe('127.0.0.1');
  });
  it('keys IPv6 by its /64 prefix', () => {
    expect(addressKey('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8:1:2::9')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:0DB8:0001:0002:ffff::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(addressKey('64:ff9b::192.0.2.1')).toBe('64:ff9b:0:0::/64');
  });
  it('has no key without an address', () => {
    expect(addressKey(undefined)).toBeNull();
    expect(addressKey('')).toBeNull();
  });
});
