/**
 * The limits of the embedded broker's connections (gateway/README.md "TLS and limits"): failed connection
 * attempts per remote address (before any database lookup or scrypt), connections per authenticated device
 * (failures in a device's name never count against it), and a publish token bucket per device.
 */
import { addressKey, KeyedTokenBuckets } from './rate-limit.js';
import type { DeviceClient } from './hooks/context.js';

/** Per remote address, this many times MQTT_CONNECT_RATE_PER_MINUTE failed or in-progress attempts per minute. */
export const ADDRESS_ATTEMPTS_FACTOR = 10;
/** Bounds of the limiters' memory (buckets are dropped as soon as they are full again; these are hard caps). */
const MAX_LIMITED_KEYS = 200_000;

export interface ConnectionLimits {
  /** the remote address of each connection's stream, set when the socket arrives */
  readonly remoteOf: WeakMap<object, string | null>;
  readonly deviceAttempts: KeyedTokenBuckets | null;
  readonly addressAttempts: KeyedTokenBuckets | null;
  readonly publishes: KeyedTokenBuckets | null;
  /** the key of a remote address in `addressAttempts` */
  addressOf(client: DeviceClient): string | null;
  /** An attempt that settled without costing anything expensive, or succeeded: it no longer counts against its address. */
  releaseAddress(client: DeviceClient): void;
}

export function createConnectionLimits(opts: { connectRatePerMinute?: number; publishRatePerSecond?: number; publishBurst?: number; clock: () => number }): ConnectionLimits {
  const connectRate = opts.connectRatePerMinute;
  const now = opts.clock;
  const remoteOf = new WeakMap<object, string | null>();
  const deviceAttempts = connectRate ? new KeyedTokenBuckets({ capacity: connectRate, refillPerSecond: connectRate / 60, maxKeys: MAX_LIMITED_KEYS, now }) : null;
  const addressAttempts = connectRate
    ? new KeyedTokenBuckets({ capacity: connectRate * ADDRESS_ATTEMPTS_FACTOR, refillPerSecond: (connectRate * ADDRESS_ATTEMPTS_FACTOR) / 60, maxKeys: MAX_LIMITED_KEYS, now })
    : null;
  const publishes = opts.publishRatePerSecond
    ? new KeyedTokenBuckets({ capacity: Math.max(1, opts.publishBurst ?? opts.publishRatePerSecond), refillPerSecond: opts.publishRatePerSecond, maxKeys: MAX_LIMITED_KEYS, now })
    : null;
  return {
    remoteOf,
    deviceAttempts,
    addressAttempts,
    publishes,
    addressOf: (client) => (addressAttempts ? addressKey(remoteOf.get(client.conn as object)) : null),
    releaseAddress(client) {
      if (client.limitedAddress && addressAttempts) addressAttempts.give(client.limitedAddress);
      client.limitedAddress = null;
    },
  };
}
