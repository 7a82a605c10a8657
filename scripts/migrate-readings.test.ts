/**
 * The readings layout change (migrations 012-013, `npm run migrate-readings`) on a populated database of the
 * 001-011 layout: several meters (15- and 60-minute), actual and estimated readings, readings committed days
 * late, energies beyond the 32-bit range. Every meter's count and sums, and every row, must come out the
 * same through the readings view; in place (013 alone) and ahead of the upgrade while the previous version
 * keeps writing (new readings, late readings, an estimate replaced, a reading deleted).
 */
import { copyFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { runner } from 'node-pg-migrate';
import { afterAll, describe, expect, it } from 'vitest';
import { createDatabase, storageModes, type StorageMode } from '../test/support/database.js';
import { createLogger } from '../common/logger.js';
import { MIGRATIONS_TABLE, migrate } from '../common/migrate.js';
import { copyReadingsAhead } from './migrate-readings.js';

const MIGRATIONS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'migrations');
const log = createLogger('silent');
const drops: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const drop of drops) await drop().catch(() => {});
});

/** A database with the migrations before 012 applied: the layout a running installation has today. */
async function databaseBeforeLayout(mode: StorageMode) {
  const db = await createDatabase('layout');
  const pool = new pg.Pool({ connectionString: db.url, max: 3 });
  drops.push(async () => {
    await pool.end().catch(() => {});
    await db.drop();
  });
  if (mode === 'timescaledb') await pool.query('CREATE EXTENSION IF NOT EXISTS timescaledb');
  const dir = mkdtempSync(join(tmpdir(), 'smbg-migrations-'));
  for (const f of readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.sql') && f < '012')) copyFileSync(join(MIGRATIONS_DIR, f), join(dir, f));
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    await runner({ dbClient: client, dir, direction: 'up', migrationsTable: MIGRATIONS_TABLE, count: Infinity, log: () => {} } as Parameters<typeof runner>[0]);
  } finally {
    await client.end();
    rmSync(dir, { recursive: true, force: true });
  }
  const kind = (await pool.query(`SELECT relkind FROM pg_class WHERE oid = 'public.readings'::regclass`)).rows[0].relkind;
  expect(kind).toBe('r');
  return { ...db, pool };
}

const METERS = [
  { id: 'MTR-A', secs: 900 },
  { id: 'MTR-B', secs: 900 },
  { id: 'MTR-C', secs: 3600 },
  { id: 'MTR-D', secs: 900 },
  { id: 'MTR-BIG', secs: 900 },
  { id: 'MTR-E', secs: 300 },
];

/** ~9,000 readings over 20 days: mostly actual and on time, every 13th estimated, every 50th days late, large values on MTR-BIG. */
async function populate(pool: pg.Pool) {
  await pool.query(`INSERT INTO accounts (id, name, timezone, billing_day) VALUES ('ACC', 'Acc', 'Europe/London', 1)`);
  for (const m of METERS) {
    await pool.query(`INSERT INTO devices (id, kind, secret_hash) VALUES ($1, 'meter', 'x')`, [m.id]);
    await pool.query(`INSERT INTO meters (id, account_id, timezone, interval_seconds, created_at) VALUES ($1, 'ACC', 'Europe/London', $2, '2026-01-01')`, [m.id, m.secs]);
  }
  for (const m of METERS) {
    const perDay = 86_400 / m.secs;
    const n = m.id === 'MTR-E' ? 3 * perDay : 20 * perDay;
    await pool.query(
      `INSERT INTO readings (meter_id, interval_start, interval_seconds, import_mwh, export_mwh, quality, received_at)
       SELECT $1, t, $2,
              CASE WHEN $1 = 'MTR-BIG' AND k % 7 = 0 THEN 9007199254740993 - k ELSE 1000 + (k * 7919) % 250000 END,
              CASE WHEN $1 = 'MTR-BIG' AND k % 11 = 0 THEN 3000000000 + k WHEN k % 3 = 0 THEN (k * 104729) % 90000 ELSE 0 END,
              CASE WHEN k % 13 = 0 THEN 'estimated' ELSE 'actual' END,
              CASE WHEN k % 13 = 0 THEN timestamptz '2026-04-01T00:15:00.123456Z'
                   WHEN k % 50 = 0 THEN t + interval '4 days 3 hours' + k * interval '1 millisecond'
                   ELSE t + $2 * interval '1 second' + (k % 997) * interval '37 milliseconds' END
       FROM generate_series(0, $3::int - 1) k CROSS JOIN LATERAL (SELECT timestamptz '2026-03-01T00:00:00Z' + k * $2 * interval '1 second' AS t) tt`,
      [m.id, m.secs, n],
    );
  }
}

interface Row {
  meter_id: string;
  interval_start: string;
  interval_seconds: number;
  import_mwh: string;
  export_mwh: string;
  quality: string;
  received_us: string;
}
const ROWS_SQL = `SELECT meter_id, interval_start::text, interval_seconds, import_mwh::text, export_mwh::text, quality,
                         (extract(epoch FROM received_at) * 1000000)::bigint::text AS received_us
                  FROM readings ORDER BY meter_id, interval_start`;
const SUMS_SQL = `SELECT meter_id, count(*)::int AS n, count(*) FILTER (WHERE quality = 'estimated')::int AS estimated,
                         sum(interval_seconds)::text AS secs, sum(import_mwh)::text AS import, sum(export_mwh)::text AS export
                  FROM readings GROUP BY meter_id ORDER BY meter_id`;

/** Same rows; received_at equal, or for on-time actual readings rounded up to the next whole second. */
function expectSameRows(before: Row[], after: Row[]) {
  expect(after.length).toBe(before.length);
  for (let i = 0; i < before.length; i++) {
    const { received_us: b, ...restBefore } = before[i];
    const { received_us: a, ...restAfter } = after[i];
    expect(restAfter).toEqual(restBefore);
    const exact = BigInt(a) === BigInt(b);
    const roundedUp = BigInt(a) % 1_000_000n === 0n && BigInt(a) >= BigInt(b) && BigInt(a) - BigInt(b) < 1_000_000n;
    if (!exact && !roundedUp) throw new Error(`received_at of ${before[i].meter_id} ${before[i].interval_start}: ${b} -> ${a}`);
    if (before[i].quality === 'estimated') expect(a).toBe(b);
  }
}

describe.each(storageModes())('readings layout migration (%s)', (mode) => {
  it('013 alone moves every reading of a populated database, verified per meter, and the view keeps the columns', async () => {
    const db = await databaseBeforeLayout(mode);
    await populate(db.pool);
    const rows = (await db.pool.query<Row>(ROWS_SQL)).rows;
    const sums = (await db.pool.query(SUMS_SQL)).rows;
    expect(rows.length).toBeGreaterThan(8000);
    expect(sums.find((s) => s.meter_id === 'MTR-BIG').import).not.toBe('0');

    const { storageMode } = await migrate({ databaseUrl: db.url, storage: mode, log });
    expect(storageMode).toBe(mode);
    expect((await db.pool.query(`SELECT relkind FROM pg_class WHERE oid = 'public.readings'::regclass`)).rows[0].relkind).toBe('v');
    expect((await db.pool.query(SUMS_SQL)).rows).toEqual(sums);
    expectSameRows(rows, (await db.pool.query<Row>(ROWS_SQL)).rows);
    // the bookkeeping of the copy is gone
    expect((await db.pool.query(`SELECT to_regclass('public.readings_layout_copy') AS t`)).rows[0].t).toBeNull();
    // large values kept exactly, in the int8 overflow column
    expect((await db.pool.query(`SELECT count(*)::int AS n FROM meter_readings WHERE large_mwh IS NOT NULL`)).rows[0].n).toBeGreaterThan(0);
  });

  it('copied ahead while the previous version writes, then 013 copies the rest, heals a deleted reading and verifies', async () => {
    const db = await databaseBeforeLayout(mode);
    await populate(db.pool);
    const lines: string[] = [];
    const first = await copyReadingsAhead({ databaseUrl: db.url, log: (l) => lines.push(l) });
    expect(first).toMatchObject({ alreadyMigrated: false, mismatchedMeters: 0 });
    expect(first.weeksCopied).toBeGreaterThanOrEqual(3);
    expect(first.rowsCopied).toBe(Number((await db.pool.query('SELECT count(*) FROM readings')).rows[0].count));
    // resumable: a second run copies no week again
    const second = await copyReadingsAhead({ databaseUrl: db.url });
    expect(second.weeksCopied).toBe(0);
    expect(second.mismatchedMeters).toBe(0);

    // The previous version keeps running: new on-time readings, a reading days late into a copied week, an
    // estimate replaced by an actual reading, and a reading deleted by hand.
    await db.pool.query(
      `INSERT INTO readings (meter_id, interval_start, interval_seconds, import_mwh, export_mwh, quality)
       SELECT 'MTR-A', now() - interval '10 minutes' - k * interval '15 minutes', 900, 4242 + k, 0, 'actual' FROM generate_series(0, 3) k`,
    );
    await db.pool.query(
      `INSERT INTO readings (meter_id, interval_start, interval_seconds, import_mwh, export_mwh, quality)
       VALUES ('MTR-D', '2026-02-27T10:00:00Z', 900, 777, 1, 'actual')`,
    );
    await db.pool.query(
      `UPDATE readings SET import_mwh = 55555, quality = 'actual', received_at = now()
       WHERE meter_id = 'MTR-B' AND interval_start = timestamptz '2026-03-01T00:00:00Z' + 13 * interval '15 minutes'`,
    );
    await db.pool.query(`DELETE FROM readings WHERE meter_id = 'MTR-C' AND interval_start = '2026-03-05T05:00:00Z'`);
    const rows = (await db.pool.query<Row>(ROWS_SQL)).rows;
    const sums = (await db.pool.query(SUMS_SQL)).rows;

    await migrate({ databaseUrl: db.url, storage: mode, log });
    expect((await db.pool.query(SUMS_SQL)).rows).toEqual(sums);
    expectSameRows(rows, (await db.pool.query<Row>(ROWS_SQL)).rows);
    expect((await copyReadingsAhead({ databaseUrl: db.url })).alreadyMigrated).toBe(true);
  });

  it('after the change: ingest_readings() keeps its outcomes, and readings written through the view read back the same', async () => {
    const db = await databaseBeforeLayout(mode);
    await populate(db.pool);
    await migrate({ databaseUrl: db.url, storage: mode, log });
    const ingest = (m: string[], s: number[], imp: (number | string)[], q: string[]) =>
      db.pool.query(`SELECT idx, outcome FROM ingest_readings($1::text[], $2::bigint[], $3::int[], $4::bigint[], $5::bigint[], $6::text[], $7::text[]) ORDER BY idx`, [
        m, s, m.map(() => 900), imp, m.map(() => 0), q, m.map(() => null),
      ]);
    const t = Date.parse('2026-03-25T10:00:00Z');
    // stored (absent from the result), a large value, an estimate, unknown meter, misaligned, interval mismatch
    expect((await ingest(['MTR-A', 'MTR-A', 'MTR-A', 'NOPE', 'MTR-A', 'MTR-C'], [t, t + 900_000, t + 1_800_000, t, t + 60_000, t], [1, '5000000000', 3, 1, 1, 1], ['actual', 'actual', 'estimated', 'actual', 'actual', 'actual'])).rows)
      .toEqual([{ idx: 4, outcome: 'unknown_meter' }, { idx: 5, outcome: 'misaligned' }, { idx: 6, outcome: 'interval_mismatch' }]);
    // duplicate, conflicting duplicate, actual replacing the estimate
    expect((await ingest(['MTR-A', 'MTR-A', 'MTR-A'], [t, t + 900_000, t + 1_800_000], [1, 2, 9], ['actual', 'actual', 'actual'])).rows)
      .toEqual([{ idx: 1, outcome: 'duplicate' }, { idx: 2, outcome: 'conflicting_duplicate' }, { idx: 3, outcome: 'replaced' }]);
    const stored = (await db.pool.query(`SELECT import_mwh::text, quality FROM readings WHERE meter_id = 'MTR-A' AND interval_start >= to_timestamp(${t / 1000}) AND interval_start < to_timestamp(${t / 1000}) + interval '45 minutes' ORDER BY interval_start`)).rows;
    expect(stored).toEqual([{ import_mwh: '1', quality: 'actual' }, { import_mwh: '5000000000', quality: 'actual' }, { import_mwh: '9', quality: 'actual' }]);

    // writes through the view: insert (an occupied key fails as on a table), update, delete
    await db.pool.query(`INSERT INTO readings (meter_id, interval_start, interval_seconds, import_mwh, export_mwh, quality, received_at)
                         VALUES ('MTR-D', '2026-04-10T00:00:00Z', 900, 2147483648, 5, 'estimated', '2026-04-12T00:00:00.5Z')`);
    await expect(db.pool.query(`INSERT INTO readings (meter_id, interval_start, interval_seconds, import_mwh, export_mwh, quality)
                                VALUES ('MTR-D', '2026-04-10T00:00:00Z', 900, 1, 1, 'actual')`)).rejects.toThrow(/duplicate key/);
    await expect(db.pool.query(`INSERT INTO readings (meter_id, interval_start, interval_seconds, import_mwh, export_mwh, quality)
                                VALUES ('NOPE', '2026-04-10T00:00:00Z', 900, 1, 1, 'actual')`)).rejects.toThrow(/meter_key/);
    const one = `SELECT interval_seconds, import_mwh::text, export_mwh::text, quality, received_at FROM readings WHERE meter_id = 'MTR-D' AND interval_start = '2026-04-10T00:00:00Z'`;
    expect((await db.pool.query(one)).rows).toEqual([{ interval_seconds: 900, import_mwh: '2147483648', export_mwh: '5', quality: 'estimated', received_at: new Date('2026-04-12T00:00:00.5Z') }]);
    await db.pool.query(`UPDATE readings SET import_mwh = 12, quality = 'actual' WHERE meter_id = 'MTR-D' AND interval_start = '2026-04-10T00:00:00Z'`);
    expect((await db.pool.query(one)).rows[0]).toMatchObject({ import_mwh: '12', quality: 'actual' });
    expect((await db.pool.query(`SELECT large_mwh FROM meter_readings r JOIN meters m ON m.key = r.meter_key WHERE m.id = 'MTR-D' AND interval_start = '2026-04-10T00:00:00Z'`)).rows[0].large_mwh).toBeNull();
    expect((await db.pool.query(`DELETE FROM readings WHERE meter_id = 'MTR-D' AND interval_start = '2026-04-10T00:00:00Z'`)).rowCount).toBe(1);
    expect((await db.pool.query(one)).rows).toEqual([]);
    // a close's estimates: stored where free, a stored reading wins
    const n = await db.pool.query(`SELECT insert_readings_if_absent($1::text[], $2::bigint[], $3::int[], $4::bigint[], $5::bigint[], 'estimated', $6::timestamptz) AS n`, [
      ['MTR-A', 'MTR-A'], [t, t + 2_700_000], [900, 900], [100, 200], [0, 0], '2026-04-02T00:15:00.250Z',
    ]);
    expect(n.rows[0].n).toBe('1');
    expect((await db.pool.query(`SELECT import_mwh::int AS i, quality, received_at FROM readings WHERE meter_id = 'MTR-A' AND interval_start = to_timestamp(${(t + 2_700_000) / 1000})`)).rows)
      .toEqual([{ i: 200, quality: 'estimated', received_at: new Date('2026-04-02T00:15:00.250Z') }]);
  });
});
