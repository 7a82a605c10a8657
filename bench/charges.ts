/**
 * Charges latency: GET /v1/meters/{id}/charges for one month of 15-minute data, against the billing API
 * running as its own process, with `--meters` meters' data (31 days x 96 intervals each) in the database.
 *
 *   npm run bench:charges -- [--meters 10000] [--requests 300]
 *
 * Uses DATABASE_URL's server when set, else PostgreSQL on 127.0.0.1:5432; creates and drops a fresh database.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { freePort } from '../common/db.js';
import { createLogger } from '../common/logger.js';
import { migrate, readingsStorageMode } from '../common/migrate.js';
import { exampleTariff } from '../rating/index.js';

const { values: args } = parseArgs({ options: { meters: { type: 'string', default: '10000' }, requests: { type: 'string', default: '300' } } });
const METERS = Number(args.meters);
const REQUESTS = Number(args.requests);
const TOKEN = `bench-admin-${randomBytes(8).toString('hex')}`;
const serverUrl = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
const dbName = `smbg_bench_${randomBytes(4).toString('hex')}`;
const adminUrl = new URL(serverUrl);
adminUrl.pathname = '/postgres';
const benchUrl = new URL(serverUrl);
benchUrl.pathname = `/${dbName}`;

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

async function main() {
  const admin = new pg.Client({ connectionString: adminUrl.toString() });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  let api: ReturnType<typeof spawn> | null = null;
  try {
    await migrate({ databaseUrl: benchUrl.toString(), storage: 'auto', log: createLogger('warn') });
    const db = new pg.Client({ connectionString: benchUrl.toString() });
    await db.connect();
    const storage = await readingsStorageMode(db);
    const t0 = performance.now();
    await db.query(`INSERT INTO accounts VALUES ('BENCH', 'Bench', 'America/Los_Angeles', 1)`);
    await db.query(`INSERT INTO devices (id, kind, secret_hash) SELECT 'MTR-' || g, 'meter', 'x' FROM generate_series(1, $1) g`, [METERS]);
    await db.query(`INSERT INTO meters (id, account_id, timezone, interval_seconds) SELECT 'MTR-' || g, 'BENCH', 'America/Los_Angeles', 900 FROM generate_series(1, $1) g`, [METERS]);
    await db.query(`INSERT INTO tariffs (id, version, effective_from, document) VALUES ($1, 1, $2, $3)`, [exampleTariff.id, exampleTariff.effectiveFrom, JSON.stringify(exampleTariff)]);
    await db.query(`INSERT INTO meter_tariffs (meter_id, effective_from, tariff_id) SELECT 'MTR-' || g, '2026-01-01T08:00:00Z', $2 FROM generate_series(1, $1) g`, [METERS, exampleTariff.id]);
    // July 2026 in Los Angeles: 31 days x 96 intervals per meter, loaded day by day.
    for (let day = 0; day < 31; day++) {
      await db.query(
        `INSERT INTO readings (meter_id, interval_start, interval_seconds, import_mwh, export_mwh, quality)
         SELECT 'MTR-' || m, timestamptz '2026-07-01T07:00:00Z' + ($2 * 96 + s) * interval '15 minutes', 900,
                (50000 + (m * 7919 + s * 104729) % 400000)::bigint, CASE WHEN s BETWEEN 40 AND 64 THEN ((m + s) % 50000)::bigint ELSE 0 END, 'actual'
         FROM generate_series(1, $1) m, generate_series(0, 95) s`,
        [METERS, day],
      );
      process.stdout.write(`\rloading: day ${day + 1}/31`);
    }
    await db.query('ANALYZE');
    const loadSeconds = (performance.now() - t0) / 1000;
    const rows = Number((await db.query('SELECT count(*) FROM readings')).rows[0].count);
    process.stdout.write(`\rloaded ${rows.toLocaleString('en')} readings for ${METERS} meters in ${loadSeconds.toFixed(0)} s\n`);
    await db.end();

    const port = await freePort();
    api = spawn(process.execPath, ['--import', 'tsx', 'billing-api/main.ts'], {
      env: { ...process.env, DATABASE_URL: benchUrl.toString(), API_PORT: String(port), API_HOST: '127.0.0.1', BILLING_ADMIN_TOKEN: TOKEN, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      api!.stdout!.on('data', (d: Buffer) => String(d).includes('started') && resolve());
      api!.once('exit', (code) => reject(new Error(`billing-api exited ${code}`)));
    });
    const get = async (meter: number) => {
      const started = performance.now();
      const res = await fetch(`http://127.0.0.1:${port}/v1/meters/MTR-${meter}/charges?from=2026-07-01T00:00:00-07:00&to=2026-08-01T00:00:00-07:00`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      const body = (await res.json()) as { coverage: { actualIntervals: number } };
      if (res.status !== 200 || body.coverage.actualIntervals !== 2976) throw new Error(`unexpected answer ${res.status}: ${JSON.stringify(body).slice(0, 300)}`);
      return performance.now() - started;
    };
    for (let i = 0; i < 20; i++) await get(1 + ((i * 7919) % METERS));
    const latencies: number[] = [];
    for (let i = 0; i < REQUESTS; i++) latencies.push(await get(1 + ((i * 104729 + 17) % METERS)));
    latencies.sort((a, b) => a - b);
    const result = {
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version, storage },
      charges: { meters: METERS, readings: rows, requests: REQUESTS, p50Ms: +pct(latencies, 50).toFixed(1), p95Ms: +pct(latencies, 95).toFixed(1), p99Ms: +pct(latencies, 99).toFixed(1) },
    };
    console.log(`charges for one meter-month (2,976 intervals), ${REQUESTS} sequential requests: p50 ${result.charges.p50Ms} ms, p95 ${result.charges.p95Ms} ms, p99 ${result.charges.p99Ms} ms`);
    console.log(JSON.stringify(result));
  } finally {
    api?.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => {});
    await admin.end();
  }
}

main().catch((err) => {
  console.error(`bench failed: ${err.message}`);
  process.exit(1);
});
