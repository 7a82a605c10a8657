/**
 * Quarantine records: everything a device sent that could not be accepted, with one reason code of
 * contract section 2 and the raw input as evidence (a bounded prefix plus size and hash when oversized).
 */
import { sha256 } from '../common/secrets.js';

export const QUARANTINE_REASONS = [
  'invalid_json',
  'schema',
  'payload_too_large',
  'unknown_meter',
  'not_assigned',
  'misaligned',
  'interval_mismatch',
  'future',
  'implausible',
  'conflicting_duplicate',
] as const;
export type QuarantineReason = (typeof QUARANTINE_REASONS)[number];

/** Bytes of an oversized payload kept as evidence. */
export const OVERSIZED_PREFIX_BYTES = 4096;

export interface QuarantineRecord {
  deviceId: string | null;
  topic: string | null;
  reason: QuarantineReason;
  detail: string;
  meterId: string | null;
  /** epoch ms, when the rejected input names a parseable interval start */
  intervalStart: number | null;
  raw: Buffer;
  rawSize: number;
  rawSha256: Buffer;
  rawTruncated: boolean;
}

export interface QuarantineSource {
  deviceId: string | null;
  topic: string | null;
}

/** Evidence for a whole payload: kept whole up to `keepBytes`, otherwise a prefix plus size and hash. */
export function payloadEvidence(payload: Buffer, keepBytes: number) {
  const truncated = payload.length > keepBytes;
  return {
    raw: truncated ? Buffer.from(payload.subarray(0, OVERSIZED_PREFIX_BYTES)) : payload,
    rawSize: payload.length,
    rawSha256: sha256(payload),
    rawTruncated: truncated,
  };
}

export function quarantineMessage(
  source: QuarantineSource,
  payload: Buffer,
  keepBytes: number,
  reason: QuarantineReason,
  detail: string,
): QuarantineRecord {
  return { ...source, reason, detail, meterId: null, intervalStart: null, ...payloadEvidence(payload, keepBytes) };
}

/** A record for one reading of a message: its JSON text as received (re-serialised from the parsed element). */
export function quarantineReading(
  source: QuarantineSource,
  element: unknown,
  reason: QuarantineReason,
  detail: string,
  meterId: string | null = null,
  intervalStart: number | null = null,
): QuarantineRecord {
  const raw = Buffer.from(safeStringify(element), 'utf8');
  return { ...source, reason, detail, meterId, intervalStart, raw, rawSize: raw.length, rawSha256: sha256(raw), rawTruncated: false };
}

function safeStringify(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
