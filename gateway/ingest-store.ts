/**
 * The commit step: one database round trip per batch of readings (the `ingest_readings` function of
 * migrations/002 does the reference checks, the upsert and the duplicate classification set-based), and
 * one more only when the batch produced quarantine records.
 */
import type { Pool } from '../common/db.js';
import type { CandidateReading } from './decode.js';
import type { QuarantineReason, QuarantineRecord } from './quarantine.js';

export type ReadingOutcome = 'stored' | 'replaced' | 'duplicate' | QuarantineReason;

const SQL_INGEST = 'SELECT idx, outcome FROM ingest_readings($1::text[], $2::bigint[], $3::int[], $4::bigint[], $5::bigint[], $6::text[], $7::text[])';

const SQL_QUARANTINE = `
INSERT INTO quarantine (device_id, topic, reason, detail, meter_id, interval_start, raw, raw_size, raw_sha256, raw_truncated)
SELECT d, t, r, dt, m, CASE WHEN s IS NULL THEN NULL ELSE timestamptz 'epoch' + s * interval '1 millisecond' END, raw, sz, h, tr
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bytea[], $8::int[], $9::bytea[], $10::bool[])
  AS q(d, t, r, dt, m, s, raw, sz, h, tr)`;

/**
 * Array literals are built by hand: every id has passed DEVICE_ID_PATTERN ([A-Za-z0-9._-]) and every
 * number is an integer, so no element needs quoting, and joining is far cheaper than pg's generic encoder.
 */
const intArray = (values: number[]) => `{${values.join(',')}}`;
const idArray = (values: (string | null)[]) => `{${values.map((v) => (v === null ? 'NULL' : v)).join(',')}}`;

export class IngestStore {
  constructor(private readonly pool: Pool) {}

  /**
   * Commits readings whose (meter, intervalStart) keys are unique within the call, and returns the
   * outcome of each, in input order.
   */
  async commitReadings(readings: CandidateReading[]): Promise<ReadingOutcome[]> {
    const n = readings.length;
    const meters = new Array<string>(n), starts = new Array<number>(n), secs = new Array<number>(n);
    const imports = new Array<number>(n), exports = new Array<number>(n), qualities = new Array<string>(n), via = new Array<string | null>(n);
    for (let i = 0; i < n; i++) {
      const r = readings[i];
      meters[i] = r.meterId; starts[i] = r.intervalStart; secs[i] = r.intervalSeconds;
      imports[i] = r.importMwh; exports[i] = r.exportMwh; qualities[i] = r.quality; via[i] = r.via;
    }
    const res = await this.pool.query<{ idx: number; outcome: ReadingOutcome }>(SQL_INGEST, [
      idArray(meters), intArray(starts), intArray(secs), intArray(imports), intArray(exports), idArray(qualities), idArray(via),
    ]);
    // Only readings that were not simply stored come back.
    const outcomes = new Array<ReadingOutcome>(n).fill('stored');
    for (const row of res.rows) outcomes[row.idx - 1] = row.outcome;
    return outcomes;
  }

  async insertQuarantine(records: QuarantineRecord[]): Promise<void> {
    if (records.length === 0) return;
    const clean = (s: string | null) => (s === null ? null : s.replace(/\u0000/g, '\uFFFD').slice(0, 2000));
    await this.pool.query(SQL_QUARANTINE, [
      records.map((q) => clean(q.deviceId)),
      records.map((q) => clean(q.topic)),
      records.map((q) => q.reason),
      records.map((q) => clean(q.detail)),
      records.map((q) => clean(q.meterId)),
      records.map((q) => q.intervalStart),
      records.map((q) => q.raw),
      records.map((q) => q.rawSize),
      records.map((q) => q.rawSha256),
      records.map((q) => q.rawTruncated),
    ]);
  }
}
