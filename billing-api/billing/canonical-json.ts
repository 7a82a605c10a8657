/**
 * Canonical JSON and the content hash of a bill: object keys sorted by UTF-16 code units at every level (as RFC 8785), no
 * whitespace, `undefined` members left out, strings escaped as JSON.stringify does. Every number in a bill
 * is an integer (money and quantities are decimal strings), so number formatting is unambiguous.
 */
import { createHash } from 'node:crypto';

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new TypeError('canonical JSON has no non-finite numbers');
    if (value === undefined || typeof value === 'function' || typeof value === 'symbol') throw new TypeError(`canonical JSON cannot encode ${typeof value}`);
    if (typeof value === 'bigint') throw new TypeError('canonical JSON cannot encode bigint');
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const keys = Object.keys(value as object)
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
}

/** SHA-256 (lowercase hex) of the canonical JSON of `value`. */
export function contentHash(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value), 'utf8').digest('hex');
}
