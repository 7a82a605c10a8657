/**
 * `npm run reorder-readings` (migrations/014): closed chunks rewritten in meter order, every reading kept,
 * the open chunk left alone; a meter's week then lies on a few heap pages instead of one page per reading.
 * Plain storage has no chunks: nothing happens.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase, storageModes, type TestDatabase } from '../test/support/database.js';
import { reorderReadings } from './reorder-readings.js';

const dbs: TestDatabase[] = [];
afterAll(async () => {
  for (const db of dbs) await db.drop().catch(() => {});
});

const SUMS = `SELECT meter_id, count(*)::int AS n, sum(import_mwh)::text AS i, sum(export_mwh)::text AS e, max(received_at) AS r
              FROM readings GROUP BY meter_id ORDER BY meter_id`;
/** heap pages holding MTR-7's readings of one closed week */
const PAGES = `SELECT count(DISTINCT (r.tableoid, (r.ctid::text::point)[0]))::int AS pages, count(*)::int AS n
               FROM meter_readings r JOIN meters m ON m.key = r.meter_key
               WHERE m.id = 'MTR-7' AND r.interval_start >= '2026-03-02' AND r.interval_start < '2026-03-09'`;

describe.each(storageModes())('reorder readings (%s)', (mode) => {
  it(mode === 'timescaledb' ? 'rewrites closed chunks in meter order and keeps every reading' : 'has nothing to reorder in plain storage', async () => {
    const db = await createTestDatabase(mode, 'reorder');
    dbs.push(db);
    await db.pool.query(`INSERT INTO accounts (id, name, timezone, billing_day) VALUES ('ACC', 'Acc', 'UTC', 1)`);
    await db.pool.query(`INSERT INTO devices (id, kind, secret_hash) SELECT 'MTR-' || g, 'meter', 'x' FROM generate_series(1, 400) g`);
    await db.pool.query(`INSERT INTO meters (id, account_id, timezone, interval_seconds) SELECT 'MTR-' || g, 'ACC', 'UTC', 900 FROM generate_series(1, 400) g`);
    // three weeks, interval by interval across the meters as ingestion writes them, plus the current hour
    await db.pool.query(
      `INSERT INTO readings (meter_id, interval_start, interval_seconds, import_mwh, export_mwh, quality, received_at)
       SELECT 'MTR-' || m, t, 900, (m * 7919 + k) % 400000, k % 3, CASE WHEN k % 97 = 0 THEN 'estimated' ELSE 'actual' END, t + interval '20 minutes'
       FROM generate_series(0, 21 * 96 - 1) k CROSS JOIN LATERAL (SELECT timestamptz '2026-03-02T00:00:00Z' + k * interval '15 minutes' AS t) tt
       CROSS JOIN generate_series(1, 400) m ORDER BY k, m`,
    );
    await db.pool.query(
      `INSERT INTO readings (meter_id, interval_start, interval_seconds, import_mwh, export_mwh, quality)
       SELECT 'MTR-' || m, date_trunc('hour', now()), 900, 5, 0, 'actual' FROM generate_series(1, 400) m`,
    );
    const sums = (await db.pool.query(SUMS)).rows;
    const before = (await db.pool.query(PAGES)).rows[0];
    expect(before.n).toBe(672);

    const lines: string[] = [];
    const reordered = await reorderReadings({ databaseUrl: db.url, log: (l) => lines.push(l) });
    expect((await db.pool.query(SUMS)).rows).toEqual(sums);
    if (mode === 'plain') {
      expect(reordered).toEqual([]);
      return;
    }
    // the three March weeks (chunks are aligned on TimescaleDB's 7-day buckets: 3 or 4 chunks), not the open one
    expect(reordered.length).toBeGreaterThanOrEqual(3);
    const open = await db.pool.query(`SELECT count(*)::int AS n FROM timescaledb_information.chunks WHERE hypertable_name = 'meter_readings' AND range_end > now()`);
    expect(open.rows[0].n).toBe(1);
    expect(before.pages).toBeGreaterThan(600);
    const after = (await db.pool.query(PAGES)).rows[0];
    expect(after.n).toBe(672);
    expect(after.pages).toBeLessThanOrEqual(8);
    // done once: a second run finds nothing
    expect(await reorderReadings({ databaseUrl: db.url })).toEqual([]);
  });
});
