/**
 * The commit step: one database round trip per batch of readings (the `ingest_readings` function of
 * migrations/002 does the reference checks, the upsert and the duplicate classification set-based), and
 * one more only when the batch produced quarantine records.
 */
import pg from 'pg';
import type { Pool } from '../../common/db.js';
import type { CandidateReading } from './decode.js';
import type { QuarantineReason, QuarantineRecord } from './quarantine.js';

export type ReadingOutcome = 'stored' | 'replaced' | 'duplicate' | QuarantineReason;

const SQL_INGEST = 'SELECT idx, outcome FROM ingest_readings($1::text[], $2::bigint[], $3::int[], $4::bigint[], $5::bigint[], $6::text[], $7::text[])';
/** With reactive energy (migrations/035): sent only for a batch where some reading carries it. */
const SQL_INGEST_REACTIVE =
  'SELECT idx, outcome FROM ingest_readings($1::text[], $2::bigint[], $3::int[], $4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::bigint[], $9::bigint[])';

const SQL_QUARANTINE = `
INSERT INTO quarantine (device_id, topic, reason, detail, meter_id, interval_start, raw, raw_size, raw_sha256, raw_truncated)
SELECT d, t, r, dt, m, CASE WHEN s IS NULL THEN NULL ELSE timestamptz 'epoch' + s * interval '1 millisecond' END, raw, sz, h, tr
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bytea[], $8::int[], $9::bytea[], $10::bool[])
  AS q(d, t, r, dt, m, s, raw, sz, h, tr)`;

/**
 * Why a commit failed, which decides what the batcher does with it:
 * - `outage`: the database did not answer, or cannot work right now, whatever the data (no connection,
 *   SQLSTATE classes 08 connection, 25 transaction state (a read-only standby after a failover), 28
 *   authorization, 3D catalog, 40 rollback (serialization, deadlock), 53 resources, 55 lock/object in use,
 *   57 operator intervention (shutdown, statement timeout), 58 system, F0 configuration, XX internal),
 *   and deployment faults no reading can cause (42501 privilege, 42P01 table, 42703 column, 42883
 *   function, 3F000 schema missing). Retried until it succeeds: nothing is acknowledged meanwhile.
 * - `data`: the database answered and refused these rows (every other SQLSTATE: 22 data exception, 23
 *   integrity constraint, P0 raised by a function or trigger, 42 other than the above, 54 program
 *   limit ...). The same rows would fail again, so the batcher isolates them instead of retrying.
 */
export type CommitFailureKind = 'outage' | 'data';

const OUTAGE_CLASSES = new Set(['08', '25', '28', '3D', '40', '53', '55', '57', '58', 'F0', 'XX']);
const DEPLOYMENT_FAULTS = new Set(['42501', '42P01', '42703', '42883', '3F000']);

export function commitFailureKind(err: unknown): CommitFailureKind {
  if (!(err instanceof pg.DatabaseError) || typeof err.code !== 'string') return 'outage';
  if (OUTAGE_CLASSES.has(err.code.slice(0, 2)) || DEPLOYMENT_FAULTS.has(err.code)) return 'outage';
  return 'data';
}

/** The database's own words for a refused commit, for the quarantine detail and the log. */
export function describeCommitError(err: unknown): string {
  const e = err as pg.DatabaseError;
  const text = `${e?.message ?? String(err)}${e?.code ? ` (SQLSTATE ${e.code})` : ''}`;
  return text.length > 500 ? `${text.slice(0, 500)}...` : text;
}

export class ReadingsWriter {
  constructor(private readonly pool: Pool) {}

  /**
   * Commits readings whose (meter, intervalStart) keys are unique within the call, and returns the
   * outcome of each, in input order.
   */
  async commitReadings(readings: CandidateReading[]): Promise<ReadingOutcome[]> {
    const n = readings.length;
    const meters = new Array<string>(n), starts = new Array<number>(n), secs = new Array<number>(n);
    const imports = new Array<number>(n), exports = new Array<number>(n), qualities = new Array<string>(n), via = new Array<string | null>(n);
    let reactive = false;
    for (let i = 0; i < n; i++) {
      const r = readings[i];
      meters[i] = r.meterId; starts[i] = r.intervalStart; secs[i] = r.intervalSeconds;
      imports[i] = r.importMwh; exports[i] = r.exportMwh; qualities[i] = r.quality; via[i] = r.via;
      if (r.reactiveImportMvarh !== undefined || r.reactiveExportMvarh !== undefined) reactive = true;
    }
    // Arrays go to the driver as arrays: pg quotes every element, so an id spelled NULL stays a string.
    const res = reactive
      ? await this.pool.query<{ idx: number; outcome: ReadingOutcome }>(SQL_INGEST_REACTIVE, [
          meters, starts, secs, imports, exports, qualities, via,
          readings.map((r) => r.reactiveImportMvarh ?? null),
          readings.map((r) => r.reactiveExportMvarh ?? null),
        ])
      : await this.pool.query<{ idx: number; outcome: ReadingOutcome }>(SQL_INGEST, [meters, starts, secs, imports, exports, qualities, via]);
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
