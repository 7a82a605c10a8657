/**
 * Quarantine records: everything a device sent that could not be accepted, with one reason code of
 * contract section 2 and the raw input as evidence (a bounded prefix plus size and hash when oversized).
 */
import { sha256 } from '../../common/secrets.js';

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
  // intervalStart earlier than the meter's creation minus the backfill window (ingest_readings(), migrations/010)
  'before_service_window',
  // The database refused to store the reading for a reason in its data (an error raised by a check,
  // a constraint or the ingest function); the detail carries the database's message and SQLSTATE.
  'commit_rejected',
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

/**
 * A record for one reading of a message: its JSON text (re-serialised from the parsed element). An element
 * that cannot be serialised (nested deeper than JSON.stringify can recurse) is evidenced by the whole
 * payload it came in, so no evidence is ever lost.
 */
export function quarantineReading(
  source: QuarantineSource,
  element: unknown,
  reason: QuarantineReason,
  detail: string,
  meterId: string | null = null,
  intervalStart: number | null = null,
  payload?: { bytes: Buffer; keepBytes: number },
): QuarantineRecord {
  let text: string | undefined;
  try {
    text = JSON.stringify(element);
  } catch {
    text = undefined;
  }
  if (text === undefined && payload) {
    return { ...source, reason, detail, meterId, intervalStart, ...payloadEvidence(payload.bytes, payload.keepBytes) };
  }
  const raw = Buffer.from(text ?? String(element), 'utf8');
  return { ...source, reason, detail, meterId, intervalStart, raw, rawSize: raw.length, rawSha256: sha256(raw), rawTruncated: false };
}
