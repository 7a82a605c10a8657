/**
 * How GET /v1/meters scales with the fleet: `npx tsx billing-api/provisioning/silent-meters.bench.ts
 * [--meters 10000] [--days 30] [--storage timescaledb|plain]` (TEST_PG_ADMIN_URL, default postgres://postgres@127.0.0.1:5432/postgres). Creates a database, `meters` meters with a
 * reading every 6 hours for `days` days (some meters stop earlier, some never report), and prints the median
 * time of a first page by id, of the silent meters of the whole fleet sorted by staleness, and of one
 * concentrator's silent meters, with the plan of the per-meter probe (it must be an index scan of the
 * meter_readings key, backwards, stopping at the first row).
 */
import { parseArgs } from 'node:util';
import { createTestDatabase } from '../../test/support/database.js';
import { ProvisioningRepository } from './provisioning.repository.js';

process.env.TEST_PG_ADMIN_URL ??= 'postgres://postgres@127.0.0.1:5432/postgres';
const { values } = parseArgs({ options: { meters: { type: 'string', default: '10000' }, days: { type: 'string', default: '30' }, storage: { type: 'string', default: 'timescaledb' } } });
const meters = Number(values.meters);
const days = Number(values.days);
const db = await createTestDatabase(values.storage as 'timescaledb' | 'plain', 'bench_meters');
try {
  const q = db.pool;
  const t0 = Date.now();
  await q.query(`INSERT INTO accounts (id, name, timezone, billing_day) SELECT 'ACC-' || g, 'a', 'UTC', 1 FROM generate_series(1, $1) g`, [Math.ceil(meters / 10)]);
  await q.query(`INSERT INTO devices (id, kind, secret_hash) SELECT 'M-' || lpad(g::text, 7, '0'), 'meter', 'x' FROM generate_series(1, $1) g`, [meters]);
  await q.query(`INSERT INTO meters (id, account_id, timezone, interval_seconds) SELECT 'M-' || lpad(g::text, 7, '0'), 'ACC-' || (1 + (g - 1) / 10), 'UTC', 3600 FROM generate_series(1, $1) g`, [meters]);
  await q.query(`INSERT INTO devices (id, kind, secret_hash) VALUES ('CON-1', 'concentrator', 'x')`);
  await q.query(`INSERT INTO concentrators (id) VALUES ('CON-1')`);
  await q.query(`INSERT INTO concentrator_meters (concentrator_id, meter_id) SELECT 'CON-1', 'M-' || lpad(g::text, 7, '0') FROM generate_series(1, least($1, 1000)) g`, [meters]);
  // Every 20th meter never reports; every 7th stops after half the period.
  await q.query(
    `INSERT INTO readings (meter_id, interval_start, interval_seconds, import_mwh, export_mwh, quality)
     SELECT 'M-' || lpad(m::text, 7, '0'), date_trunc('hour', now()) - ($2 * 24 - h * 6) * interval '1 hour', 3600, 1000, 0, 'actual'
     FROM generate_series(1, $1) m, generate_series(0, $2 * 4 - 1) h
     WHERE m % 20 <> 0 AND (m % 7 <> 0 OR h < $2 * 2)`,
    [meters, days],
  );
  await q.query('VACUUM ANALYZE');
  const rows = (await q.query('SELECT count(*)::int AS n FROM meter_readings')).rows[0].n;
  console.log(`${meters} meters, ${rows} readings over ${days} days (${values.storage}), loaded in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  const repo = new ProvisioningRepository(q);
  const time = async (name: string, fn: () => Promise<unknown[]>) => {
    const ms: number[] = [];
    let n = 0;
    for (let i = 0; i < 7; i++) {
      const s = performance.now();
      n = (await fn()).length;
      ms.push(performance.now() - s);
    }
    ms.sort((a, b) => a - b);
    console.log(`${name}: ${n} meters, median ${ms[3].toFixed(1)} ms (min ${ms[0].toFixed(1)}, max ${ms[6].toFixed(1)})`);
  };
  const silentSince = Date.now() - 24 * 3_600_000;
  await time('page of 1000 by id', () => repo.listMeters({ sort: 'id', limit: 1000 }));
  await time('page of 1000 by id, after the middle', () => repo.listMeters({ sort: 'id', limit: 1000, after: { id: `M-${String(Math.floor(meters / 2)).padStart(7, '0')}` } }));
  await time('silent > 24 h, whole fleet, by staleness, first 1000', () => repo.listMeters({ sort: 'staleness', silentSince, limit: 1000 }));
  await time('silent > 24 h, one concentrator (1000 meters), by staleness', () => repo.listMeters({ sort: 'staleness', silentSince, concentratorId: 'CON-1', limit: 1000 }));
  await time('whole fleet by staleness, first 1000', () => repo.listMeters({ sort: 'staleness', limit: 1000 }));
  const plan = await q.query(
    `EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT r.interval_start FROM meter_readings r WHERE r.meter_key = (SELECT key FROM meters WHERE id = 'M-0000001') ORDER BY r.interval_start DESC LIMIT 1`,
  );
  console.log('probe of one meter:\n' + plan.rows.map((r) => '  ' + r['QUERY PLAN']).join('\n'));
} finally {
  await db.drop();
}
