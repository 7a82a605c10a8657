/**
 * Ingestion throughput, end to end: concentrators publish batches of readings (QoS 1) over real sockets to
 * the gateway running as its own process (`gateway/main.ts`), which commits them to the database before
 * each PUBACK. Prints readings/s, PUBACK latency percentiles, and, for scale, the rate at which the same
 * rows go straight into the same table definition with COPY.
 *
 *   npm run bench:ingest -- [--readings 500000] [--connections 8] [--batch 100] [--inflight 16] [--meters 2000] [--cpu-prof DIR]
 *
 * Uses DATABASE_URL's server when set, else PostgreSQL on 127.0.0.1:5432; creates and drops a fresh
 * database (TimescaleDB hypertable when available).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { cpus } from 'node:os';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import pg from 'pg';
import mqtt from 'mqtt';
import { from as copyFrom } from 'pg-copy-streams';
import { createLogger } from '../common/logger.js';
import { migrate, readingsStorageMode } from '../common/migrate.js';
import { freePort } from '../common/db.js';
import { hashGeneratedSecret } from '../common/secrets.js';

const { values: args } = parseArgs({
  options: {
    readings: { type: 'string', default: '500000' },
    connections: { type: 'string', default: '8' },
    batch: { type: 'string', default: '100' },
    inflight: { type: 'string', default: '16' },
    meters: { type: 'string', default: '2000' },
    'cpu-prof': { type: 'string' },
  },
});
const TOTAL = Number(args.readings);
const CONNECTIONS = Number(args.connections);
const BATCH = Number(args.batch);
const INFLIGHT = Number(args.inflight);
const METERS = Number(args.meters);
const SECRET = 'bench-secret-0123456789';

const serverUrl = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
const dbName = `smbg_bench_${randomBytes(4).toString('hex')}`;
const adminUrl = new URL(serverUrl);
adminUrl.pathname = '/postgres';
const benchUrl = new URL(serverUrl);
benchUrl.pathname = `/${dbName}`;

function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN;
}

async function main() {
  const admin = new pg.Client({ connectionString: adminUrl.toString() });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const log = createLogger('warn');
  let gateway: ReturnType<typeof spawn> | null = null;
  try {
    await migrate({ databaseUrl: benchUrl.toString(), storage: 'auto', log });
    const db = new pg.Client({ connectionString: benchUrl.toString() });
    await db.connect();
    const storage = await readingsStorageMode(db);

    // Fleet: METERS meters spread over CONNECTIONS concentrators, provisioned in bulk with SQL.
    const secretHash = hashGeneratedSecret(SECRET);
    await db.query(`INSERT INTO accounts VALUES ('BENCH', 'Bench', 'UTC', 1)`);
    await db.query(`INSERT INTO devices (id, kind, secret_hash) SELECT 'MTR-' || g, 'meter', $1 FROM generate_series(1, $2) g`, [secretHash, METERS]);
    await db.query(`INSERT INTO meters (id, account_id, timezone, interval_seconds) SELECT 'MTR-' || g, 'BENCH', 'UTC', 900 FROM generate_series(1, $1) g`, [METERS]);
    await db.query(`INSERT INTO devices (id, kind, secret_hash) SELECT 'DCU-' || g, 'concentrator', $1 FROM generate_series(1, $2) g`, [secretHash, CONNECTIONS]);
    await db.query(`INSERT INTO concentrators (id) SELECT 'DCU-' || g FROM generate_series(1, $1) g`, [CONNECTIONS]);
    await db.query(`INSERT INTO concentrator_meters SELECT 'DCU-' || (1 + (g % $2)), 'MTR-' || g FROM generate_series(1, $1) g`, [METERS, CONNECTIONS]);

    // Payloads, generated before timing: each concentrator walks its meters through consecutive intervals.
    const messagesPerConnection = Math.ceil(TOTAL / BATCH / CONNECTIONS);
    const start = Date.parse('2025-01-01T00:00:00Z');
    const payloads: Buffer[][] = [];
    for (let c = 0; c < CONNECTIONS; c++) {
      const own = Array.from({ length: METERS }, (_, i) => i + 1).filter((g) => 1 + (g % CONNECTIONS) === c + 1);
      const list: Buffer[] = [];
      let cursor = 0;
      for (let m = 0; m < messagesPerConnection; m++) {
        const readings = [];
        for (let j = 0; j < BATCH; j++, cursor++) {
          const meter = own[cursor % own.length];
          const slot = Math.floor(cursor / own.length);
          readings.push({ meterId: `MTR-${meter}`, intervalStart: new Date(start + slot * 900_000).toISOString(), intervalSeconds: 900, importWh: ((cursor * 7919) % 400000) / 1000 });
        }
        list.push(Buffer.from(JSON.stringify({ readings })));
      }
      payloads.push(list);
    }
    const readingsSent = CONNECTIONS * messagesPerConnection * BATCH;

    const port = await freePort();
    gateway = spawn(process.execPath, [...(args['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${args['cpu-prof']}`] : []), '--import', 'tsx', 'gateway/main.ts'], {
      env: { ...process.env, DATABASE_URL: benchUrl.toString(), MQTT_PORT: String(port), MQTT_WS_PORT: '0', LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      gateway!.stdout!.on('data', (d: Buffer) => String(d).includes('started') && resolve());
      gateway!.once('exit', (code) => reject(new Error(`gateway exited ${code}`)));
    });

    const clients = await Promise.all(
      payloads.map(
        (_, c) =>
          new Promise<mqtt.MqttClient>((resolve, reject) => {
            const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, { username: `DCU-${c + 1}`, password: SECRET, clientId: `bench-dcu-${c + 1}`, reconnectPeriod: 0 });
            client.once('connect', () => resolve(client));
            client.once('error', reject);
          }),
      ),
    );

    const latencies: number[] = [];
    const t0 = performance.now();
    await Promise.all(
      clients.map(async (client, c) => {
        const list = payloads[c];
        let next = 0;
        const worker = async () => {
          while (next < list.length) {
            const payload = list[next++];
            const sent = performance.now();
            await new Promise<void>((res, rej) => client.publish(`concentrators/DCU-${c + 1}/readings`, payload, { qos: 1 }, (err) => (err ? rej(err) : res())));
            latencies.push(performance.now() - sent);
          }
        };
        await Promise.all(Array.from({ length: INFLIGHT }, worker));
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    await Promise.all(clients.map((c) => c.endAsync()));
    const stored = Number((await db.query('SELECT count(*) FROM readings')).rows[0].count);
    if (stored !== readingsSent) throw new Error(`stored ${stored} readings, sent ${readingsSent}`);

    // The machine's own limit for the same rows: COPY into the same table definition (same unique key).
    await db.query('CREATE TABLE readings_raw (LIKE readings INCLUDING ALL)');
    if (storage === 'timescaledb') await db.query(`SELECT create_hypertable('readings_raw', 'interval_start', chunk_time_interval => interval '7 days')`);
    const r0 = performance.now();
    await pipeline(
      Readable.from((async function* () {
        for (const list of payloads) for (const p of list) {
          let chunk = '';
          for (const r of JSON.parse(p.toString()).readings) chunk += `${r.meterId}\t${r.intervalStart}\t900\t${Math.round(r.importWh * 1000)}\t0\tactual\n`;
          yield chunk;
        }
      })()),
      db.query(copyFrom('COPY readings_raw (meter_id, interval_start, interval_seconds, import_mwh, export_mwh, quality) FROM STDIN')),
    );
    const rawSeconds = (performance.now() - r0) / 1000;
    await db.end();

    latencies.sort((a, b) => a - b);
    const result = {
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version, storage },
      ingest: {
        readings: readingsSent,
        connections: CONNECTIONS,
        readingsPerMessage: BATCH,
        inflightPerConnection: INFLIGHT,
        seconds: +seconds.toFixed(2),
        readingsPerSec: Math.round(readingsSent / seconds),
        rawInsertPerSec: Math.round(readingsSent / rawSeconds),
        ratioToRawInsert: +((readingsSent / seconds) / (readingsSent / rawSeconds)).toFixed(2),
        ackLatencyMs: { p50: +percentile(latencies, 50).toFixed(1), p99: +percentile(latencies, 99).toFixed(1) },
      },
    };
    console.log(`storage: ${storage}; ${readingsSent} readings in ${BATCH}-reading QoS 1 messages over ${CONNECTIONS} connections (${INFLIGHT} in flight each)`);
    console.log(`gateway end to end : ${result.ingest.readingsPerSec.toLocaleString('en')} readings/s  (PUBACK p50 ${result.ingest.ackLatencyMs.p50} ms, p99 ${result.ingest.ackLatencyMs.p99} ms)`);
    console.log(`COPY, same table    : ${result.ingest.rawInsertPerSec.toLocaleString('en')} rows/s  (ratio ${result.ingest.ratioToRawInsert})`);
    console.log(JSON.stringify(result));
  } finally {
    gateway?.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => {});
    await admin.end();
  }
}

main().catch((err) => {
  console.error(`bench failed: ${err.message}`);
  process.exit(1);
});
