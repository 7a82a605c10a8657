/**
 * Parse and validate one MQTT payload (contract section 2) without I/O: the steps that need no database.
 * Every reading of the payload ends here as either a candidate for storage or a quarantine record.
 * Reference checks that need the meter table (unknown_meter, not_assigned, interval_mismatch, misaligned,
 * implausible) and duplicate handling happen at commit, in the database (migrations/002).
 */
import { isUtf8 } from 'node:buffer';
import { z } from 'zod';
import { DEVICE_ID_PATTERN, MAX_READINGS_PER_MESSAGE, readingSchema, parseInstant, whToMwh, type IntervalSeconds, type Reading } from '../../common/reading.js';
import type { Device } from '../topics.js';
import { quarantineMessage, quarantineReading, type QuarantineRecord, type QuarantineSource } from './quarantine.js';

export interface CandidateReading extends Reading {
  /** the concentrator that sent it; null on a meter's own topic */
  via: string | null;
  /** the element as received, kept as evidence should the database reject it */
  element: unknown;
}

export interface DecodedMessage {
  readings: CandidateReading[];
  quarantined: QuarantineRecord[];
}

export interface DecodeOptions {
  maxPayloadBytes: number;
  nowMs: number;
  futureToleranceMs: number;
}

const envelopeSchema = z.strictObject({
  readings: z.array(z.unknown()).max(MAX_READINGS_PER_MESSAGE, `at most ${MAX_READINGS_PER_MESSAGE} readings per message`),
});

export function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ');
}

export function decodeMessage(device: Device, topic: string, payload: Buffer, opts: DecodeOptions): DecodedMessage {
  const source: QuarantineSource = { deviceId: device.id, topic };
  const reject = (reason: 'invalid_json' | 'schema' | 'payload_too_large', detail: string): DecodedMessage => ({
    readings: [],
    quarantined: [quarantineMessage(source, payload, opts.maxPayloadBytes, reason, detail)],
  });

  if (payload.length > opts.maxPayloadBytes) {
    return reject('payload_too_large', `payload of ${payload.length} bytes exceeds ${opts.maxPayloadBytes}`);
  }
  if (!isUtf8(payload)) return reject('invalid_json', 'payload is not valid UTF-8');
  let text = payload.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (err) {
    return reject('invalid_json', (err as Error).message);
  }
  if (typeof document !== 'object' || document === null || Array.isArray(document)) {
    return reject('schema', 'payload must be a JSON object');
  }

  let elements: unknown[];
  if (Object.prototype.hasOwnProperty.call(document, 'readings')) {
    const envelope = envelopeSchema.safeParse(document);
    if (!envelope.success) return reject('schema', describeIssues(envelope.error));
    elements = envelope.data.readings;
  } else if (device.kind === 'meter') {
    elements = [document];
  } else {
    return reject('schema', 'a concentrator payload must be {"readings": [...]}');
  }

  const result: DecodedMessage = { readings: [], quarantined: [] };
  const latestAllowed = opts.nowMs + opts.futureToleranceMs;
  const via = device.kind === 'concentrator' ? device.id : null;
  for (const element of elements) {
    const parsed = readingSchema.safeParse(element);
    if (!parsed.success) {
      const hint = hintOf(element);
      result.quarantined.push(
        quarantineReading(source, element, 'schema', describeIssues(parsed.error), hint.meterId, hint.intervalStart, { bytes: payload, keepBytes: opts.maxPayloadBytes }),
      );
      continue;
    }
    const data = parsed.data;
    let meterId: string;
    if (device.kind === 'meter') {
      if (data.meterId !== undefined && data.meterId !== device.id) {
        result.quarantined.push(
          quarantineReading(source, element, 'schema', `meterId "${data.meterId}" differs from the topic's meter "${device.id}"`, data.meterId, parseInstant(data.intervalStart)),
        );
        continue;
      }
      meterId = device.id;
    } else {
      if (data.meterId === undefined) {
        result.quarantined.push(quarantineReading(source, element, 'schema', 'meterId: required on a concentrator topic', null, parseInstant(data.intervalStart)));
        continue;
      }
      meterId = data.meterId;
    }
    const intervalStart = parseInstant(data.intervalStart)!;
    if (intervalStart > latestAllowed) {
      result.quarantined.push(
        quarantineReading(source, element, 'future', `intervalStart is more than ${opts.futureToleranceMs / 1000} s ahead of the gateway clock`, meterId, intervalStart),
      );
      continue;
    }
    result.readings.push({
      meterId,
      intervalStart,
      intervalSeconds: data.intervalSeconds as IntervalSeconds,
      importMwh: whToMwh(data.importWh)!,
      exportMwh: whToMwh(data.exportWh)!,
      quality: data.quality,
      ...(data.reactiveImportVarh !== undefined ? { reactiveImportMvarh: whToMwh(data.reactiveImportVarh)! } : {}),
      ...(data.reactiveExportVarh !== undefined ? { reactiveExportMvarh: whToMwh(data.reactiveExportVarh)! } : {}),
      via,
      element,
    });
  }
  return result;
}

/** Best-effort meter id and interval start of an invalid element, for searching the quarantine. */
function hintOf(element: unknown): { meterId: string | null; intervalStart: number | null } {
  if (typeof element !== 'object' || element === null) return { meterId: null, intervalStart: null };
  const e = element as Record<string, unknown>;
  const meterId = typeof e.meterId === 'string' && DEVICE_ID_PATTERN.test(e.meterId) ? e.meterId : null;
  const intervalStart = typeof e.intervalStart === 'string' && e.intervalStart.length <= 64 ? parseInstant(e.intervalStart) : null;
  return { meterId, intervalStart };
}
