/**
 * charges: GET /v1/meters/{id}/charges for one month of 15-minute data (2,976 intervals), sequential
 * requests against the billing API as its own process, with `meters` x 31 days of data in the database.
 */
import { randomBytes } from 'node:crypto';
import { freePort } from '../../common/db.js';
import { exampleTariff } from '../../rating/index.js';
import { createBenchDatabase, percentile, round1, startProcess, stopProcess } from '../support.js';
import { reorderReadings } from '../../scripts/reorder-readings.js';

export async function chargesScenario(o: { meters: number; requests: number; log: (line: string) => void }) {
  const db = await createBenchDatabase();
  let api = null;
  const token = `bench-admin-${randomBytes(8).toString('hex')}`;
  try {
    const c = db.client;
    await c.query(`INSERT INTO accounts VALUES ('BENCH', 'Bench', 'America/Los_Angeles', 1)`);
    await c.query(`INSERT INTO devices (id, kind, secret_hash) SELECT 'MTR-' || g, 'meter', 'x' FROM generate_series(1, $1) g`, [o.meters]);
    await c.query(`INSERT INTO meters (id, account_id, timezone, interval_seconds) SELECT 'MTR-' || g, 'BENCH', 'America/Los_Angeles', 900 FROM generate_series(1, $1) g`, [o.meters]);
    await c.query(`INSERT INTO tariffs (id, version, effective_from, document) VALUES ($1, 1, $2, $3)`, [exampleTariff.id, exampleTariff.effectiveFrom, JSON.stringify(exampleTariff)]);
    await c.query(`INSERT INTO meter_tariffs (meter_id, effective_from, tariff_id) SELECT 'MTR-' || g, '2026-01-01T08:00:00Z', $2 FROM generate_series(1, $1) g`, [o.meters, exampleTariff.id]);
    const t0 = performance.now();
    // July 2026 in Los Angeles, loaded day by day in the database itself.
    for (let day = 0; day < 31; day++) {
      await c.query(
        `INSERT INTO readings (meter_id, interval_start, interval_seconds, import_mwh, export_mwh, quality)
         SELECT 'MTR-' || m, timestamptz '2026-07-01T07:00:00Z' + ($2 * 96 + s) * interval '15 minutes', 900,
                (50000 + (m * 7919 + s * 104729) % 400000)::bigint, CASE WHEN s BETWEEN 40 AND 64 THEN ((m + s) % 50000)::bigint ELSE 0 END, 'actual'
         FROM generate_series(1, $1) m, generate_series(0, 95) s`,
        [o.meters, day],
      );
    }
    // Steady state: autovacuum marks pages all-visible soon after they stop changing, which index-only scans need.
    // Steady state: closed chunks in meter order (migrations/014), as the daily reorder leaves them.
    await reorderReadings({ databaseUrl: db.url });
    await c.query('VACUUM ANALYZE');
    const rows = Number((await c.query('SELECT count(*) FROM readings')).rows[0].count);
    o.log(`charges: loaded ${rows.toLocaleString('en')} readings for ${o.meters} meters in ${((performance.now() - t0) / 1000).toFixed(0)} s`);

    const port = await freePort();
    api = await startProcess('app/billing-api.main.ts', { DATABASE_URL: db.url, API_PORT: String(port), API_HOST: '127.0.0.1', BILLING_ADMIN_TOKEN: token, BILLING_CRON: 'off' });
    const get = async (meter: number) => {
      const started = performance.now();
      const res = await fetch(`http://127.0.0.1:${port}/v1/meters/MTR-${meter}/charges?from=2026-07-01T00:00:00-07:00&to=2026-08-01T00:00:00-07:00`, {
        headers: { authorization: `Bearer ${token}` },
      });
      const body = (await res.json()) as { coverage?: { actualIntervals: number } };
      if (res.status !== 200 || body.coverage?.actualIntervals !== 2976) throw new Error(`unexpected answer ${res.status}: ${JSON.stringify(body).slice(0, 300)}`);
      return performance.now() - started;
    };
    for (let i = 0; i < 20; i++) await get(1 + ((i * 7919) % o.meters));
    const latencies: number[] = [];
    for (let i = 0; i < o.requests; i++) latencies.push(await get(1 + ((i * 104729 + 17) % o.meters)));
    return {
      storage: db.storage,
      meters: o.meters,
      readings: rows,
      requests: o.requests,
      p50Ms: round1(percentile(latencies, 50)),
      p95Ms: round1(percentile(latencies, 95)),
      p99Ms: round1(percentile(latencies, 99)),
    };
  } finally {
    await stopProcess(api);
    await db.drop();
  }
}
