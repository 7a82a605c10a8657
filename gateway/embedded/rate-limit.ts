/**
 * Token buckets for the MQTT limits, pure: no timers, no I/O; the clock is injected.
 *
 * A bucket holds up to `capacity` tokens (the burst) and gains `refillPerSecond` tokens per second (the
 * sustained rate). Taking a token that is not there is a refusal. `KeyedTokenBuckets` keeps one bucket
 * per key (device id, remote address) with bounded memory: a bucket that has refilled to capacity is
 * indistinguishable from a bucket never created, so it is dropped; keys are kept in least-recently-used
 * order, so the oldest entries are the first to be full and are checked on every operation (amortised
 * O(1), no sweeping timer). A hard cap on the number of keys evicts the least recently used bucket even
 * when it is not full (which can only favour the evicted key: it starts again with a full bucket).
 */
import { isIPv4, isIPv6 } from 'node:net';

export interface BucketLimits {
  /** tokens in a full bucket: the largest burst */
  capacity: number;
  /** tokens added per second: the sustained rate */
  refillPerSecond: number;
}

interface Bucket {
  tokens: number;
  /** clock reading (ms) at which `tokens` was computed */
  at: number;
}

/** How many oldest entries one operation looks at for eviction (2 keeps the map shrinking faster than it grows). */
const EVICT_SCAN = 2;

export class KeyedTokenBuckets {
  private readonly buckets = new Map<string, Bucket>();
  private readonly capacity: number;
  private readonly refillPerMs: number;
  private readonly maxKeys: number;
  private readonly now: () => number;

  constructor(limits: BucketLimits & { maxKeys: number; now?: () => number }) {
    if (!(limits.capacity >= 1)) throw new RangeError('capacity must be >= 1');
    if (!(limits.refillPerSecond > 0)) throw new RangeError('refillPerSecond must be > 0');
    if (!(limits.maxKeys >= 1)) throw new RangeError('maxKeys must be >= 1');
    this.capacity = limits.capacity;
    this.refillPerMs = limits.refillPerSecond / 1000;
    this.maxKeys = limits.maxKeys;
    this.now = limits.now ?? (() => performance.now());
  }

  /** Takes `cost` tokens from `key`'s bucket; false (and nothing taken) when it holds fewer. */
  take(key: string, cost = 1): boolean {
    const now = this.now();
    const bucket = this.touch(key, now);
    const ok = bucket.tokens >= cost;
    if (ok) bucket.tokens -= cost;
    this.evict(now);
    return ok;
  }

  /** Returns `cost` tokens to `key`'s bucket (capped at capacity): an attempt that should not have counted. */
  give(key: string, cost = 1): void {
    const bucket = this.buckets.get(key);
    if (!bucket) return; // already full, and dropped
    const now = this.now();
    this.refill(bucket, now);
    bucket.tokens = Math.min(this.capacity, bucket.tokens + cost);
    this.evict(now);
  }

  /** Tokens `key` holds now (capacity for an unknown key). */
  tokens(key: string): number {
    const bucket = this.buckets.get(key);
    if (!bucket) return this.capacity;
    this.refill(bucket, this.now());
    return bucket.tokens;
  }

  /** Milliseconds until `key` may take `cost` tokens (0: now). */
  waitMs(key: string, cost = 1): number {
    const missing = cost - this.tokens(key);
    return missing <= 0 ? 0 : Math.ceil(missing / this.refillPerMs);
  }

  /** Buckets held (full ones are dropped as they are met). */
  get size(): number {
    return this.buckets.size;
  }

  /** Drops every full bucket; returns how many were dropped. */
  sweep(): number {
    const now = this.now();
    let dropped = 0;
    for (const [key, bucket] of this.buckets) {
      if (this.isFull(bucket, now)) {
        this.buckets.delete(key);
        dropped++;
      }
    }
    return dropped;
  }

  /** The bucket of `key`, refilled to `now` and moved to the most recently used end. */
  private touch(key: string, now: number): Bucket {
    let bucket = this.buckets.get(key);
    if (bucket) {
      this.refill(bucket, now);
      this.buckets.delete(key);
    } else {
      bucket = { tokens: this.capacity, at: now };
    }
    this.buckets.set(key, bucket);
    return bucket;
  }

  private refill(bucket: Bucket, now: number): void {
    if (now > bucket.at) {
      bucket.tokens = Math.min(this.capacity, bucket.tokens + (now - bucket.at) * this.refillPerMs);
      bucket.at = now;
    }
  }

  private isFull(bucket: Bucket, now: number): boolean {
    return bucket.tokens + Math.max(0, now - bucket.at) * this.refillPerMs >= this.capacity;
  }

  private evict(now: number): void {
    let scanned = 0;
    for (const [key, bucket] of this.buckets) {
      if (this.buckets.size > this.maxKeys) {
        this.buckets.delete(key); // hard cap: least recently used first, full or not
        continue;
      }
      if (scanned++ >= EVICT_SCAN || !this.isFull(bucket, now)) break;
      this.buckets.delete(key);
    }
  }
}

/**
 * The key under which a remote address is limited: IPv4 as is (IPv4-mapped IPv6 unwrapped), IPv6 by its
 * /64 prefix (one subscriber usually holds a whole /64, so per-address keys would be free to multiply).
 */
export function addressKey(address: string | undefined | null): string | null {
  if (!address) return null;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped && isIPv4(mapped[1])) return mapped[1];
  if (isIPv4(address)) return address;
  if (!isIPv6(address)) return address;
  const zoneless = address.split('%')[0].toLowerCase();
  const [head, tail] = zoneless.split('::') as [string, string | undefined];
  const headParts = head ? head.split(':') : [];
  const tailParts = tail === undefined ? [] : tail ? tail.split(':') : [];
  // An embedded IPv4 tail (a:b::1.2.3.4) takes two groups; only the first four groups matter here.
  const groups = [...headParts, ...Array(Math.max(0, 8 - headParts.length - tailParts.length - (tailParts.at(-1)?.includes('.') ? 1 : 0))).fill('0'), ...tailParts];
  return `${groups.slice(0, 4).map((g) => (parseInt(g, 16) || 0).toString(16)).join(':')}::/64`;
}
