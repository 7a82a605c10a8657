/**
 * What a gateway would store from the messages a broker received, by the contract's rules, without a
 * database: parse, validate, keep the first value per (meterId, intervalStart). Tests compare it with the
 * simulator's ledger.
 */
import { mwhToWhString, parseInstant, readingSchema, toReading, type Reading } from '../../common/reading.js';
import type { LedgerMeter } from '../run/ledger.js';
import type { RecordedPublish } from './recording-broker.js';

export interface StoredView {
  /** First valid value per `meterId|intervalStart`. */
  stored: Map<string, Reading>;
  /** Per meter, in the ledger's format. */
  meters: Record<string, LedgerMeter>;
  /** Items that a gateway would quarantine for their content (malformed, misaligned, future, ...). */
  invalid: number;
  /** Valid items with the key of a stored reading and the same values. */
  identicalCopies: number;
  /** Valid items with the key of a stored reading and other values. */
  conflicting: number;
}

export interface ReconcileRules {
  meterIds: readonly string[];
  intervalSeconds: number;
  /** Readings starting at or after this are `future`. */
  futureAfterMs: number;
}

export function storedView(received: readonly RecordedPublish[], rules: ReconcileRules): StoredView {
  const known = new Set(rules.meterIds);
  const stored = new Map<string, Reading>();
  let invalid = 0;
  let identicalCopies = 0;
  let conflicting = 0;
  for (const publish of received) {
    let body: unknown;
    try {
      body = JSON.parse(publish.payload);
    } catch {
      invalid++;
      continue;
    }
    const topicMeter = /^meters\/([^/]+)\/readings$/.exec(publish.topic)?.[1] ?? null;
    const items = isBatch(body) ? body.readings : topicMeter ? [body] : [];
    for (const item of items) {
      const parsed = readingSchema.safeParse(item);
      const meterId = parsed.success ? (parsed.data.meterId ?? topicMeter) : null;
      if (!parsed.success || !meterId || !known.has(meterId) || (topicMeter && meterId !== topicMeter)) {
        invalid++;
        continue;
      }
      const reading = toReading(parsed.data, meterId);
      const start = parseInstant(parsed.data.intervalStart)!;
      const aligned = start % (reading.intervalSeconds * 1000) === 0;
      if (!aligned || reading.intervalSeconds !== rules.intervalSeconds || start >= rules.futureAfterMs) {
        invalid++;
        continue;
      }
      const key = `${meterId}|${reading.intervalStart}`;
      const first = stored.get(key);
      if (!first) stored.set(key, reading);
      else if (first.importMwh === reading.importMwh && first.exportMwh === reading.exportMwh) identicalCopies++;
      else conflicting++;
    }
  }
  const totals = new Map(rules.meterIds.map((id) => [id, { readings: 0, importMwh: 0n, exportMwh: 0n }]));
  for (const reading of stored.values()) {
    const total = totals.get(reading.meterId)!;
    total.readings++;
    total.importMwh += BigInt(reading.importMwh);
    total.exportMwh += BigInt(reading.exportMwh);
  }
  const meters: Record<string, LedgerMeter> = {};
  for (const id of [...totals.keys()].sort()) {
    const total = totals.get(id)!;
    meters[id] = { readings: total.readings, importWh: mwhToWhString(total.importMwh), exportWh: mwhToWhString(total.exportMwh) };
  }
  return { stored, meters, invalid, identicalCopies, conflicting };
}

function isBatch(body: unknown): body is { readings: unknown[] } {
  return typeof body === 'object' && body !== null && Array.isArray((body as { readings?: unknown }).readings);
}
