/**
 * ingest: concentrator batches of 100 readings, QoS 1, several connections, through the real gateway (its
 * own process) into the database; PUBACK only after commit. Side by side, in the same run: the same rows
 * written straight into the same table definition (same unique key) with COPY, the fastest bulk path.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import mqtt from 'mqtt';
import { from as copyFrom } from 'pg-copy-streams';
import { freePort } from '../../common/db.js';
import { BENCH_SECRET, createBenchDatabase, provisionBenchMeters, percentile, round1, startProcess, stopProcess } from '../support.js';

export interface IngestOptions {
  readings: number;
  connections: number;
  batch: number;
  inflight: number;
  meters: number;
  cpuProfileDir?: string;
}

const SECRET = BENCH_SECRET;

export async function ingestScenario(o: IngestOptions) {
  const db = await createBenchDatabase();
  let gateway = null;
  const clients: mqtt.MqttClient[] = [];
  try {
    const hash = await provisionBenchMeters(db.client, o.meters);
    await db.client.query(`INSERT INTO devices (id, kind, secret_hash) SELECT 'DCU-' || g, 'concentrator', $1 FROM generate_series(1, $2) g`, [hash, o.connections]);
    await db.client.query(`INSERT INTO concentrators (id) SELECT 'DCU-' || g FROM generate_series(1, $1) g`, [o.connections]);
    await db.client.query(`INSERT INTO concentrator_meters SELECT 'DCU-' || (1 + (g % $2)), 'MTR-' || g FROM generate_series(1, $1) g`, [o.meters, o.connections]);

    // Payloads and the equivalent COPY text (rows as ingest_readings() writes them into meter_readings: these
    // 2025 intervals are committed long after their interval, so with the exact received_at), prepared before
    // anything is timed.
    const meterKeys = new Map((await db.client.query<{ id: string; key: number }>('SELECT id, key FROM meters')).rows.map((r) => [r.id, r.key]));
    const copyReceivedAt = new Date().toISOString();
    const perConnection = Math.ceil(o.readings / o.batch / o.connections);
    const start = Date.parse('2025-01-01T00:00:00Z');
    const payloads: Buffer[][] = [];
    const copyChunks: string[] = [];
    for (let c = 0; c < o.connections; c++) {
      const own: number[] = [];
      for (let g = 1; g <= o.meters; g++) if (1 + (g % o.connections) === c + 1) own.push(g);
      const list: Buffer[] = [];
      for (let m = 0, cursor = 0; m < perConnection; m++) {
        const readings = [];
        let copy = '';
        for (let j = 0; j < o.batch; j++, cursor++) {
          const meterId = `MTR-${own[cursor % own.length]}`;
          const intervalStart = new Date(start + Math.floor(cursor / own.length) * 900_000).toISOString();
          const importMwh = (cursor * 7919) % 400_000;
          readings.push({ meterId, intervalStart, intervalSeconds: 900, importWh: importMwh / 1000 });
          copy += `${meterKeys.get(meterId)}\t${intervalStart}\t${importMwh}\t0\t30\t${copyReceivedAt}\n`;
        }
        list.push(Buffer.from(JSON.stringify({ readings })));
        copyChunks.push(copy);
      }
      payloads.push(list);
    }
    const total = o.connections * perConnection * o.batch;

    const port = await freePort();
    gateway = await startProcess('app/gateway.main.ts', { DATABASE_URL: db.url, MQTT_PORT: String(port), MQTT_WS_PORT: '0' }, 'started', o.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${o.cpuProfileDir}`] : []);
    for (let c = 0; c < o.connections; c++) {
      clients.push(
        await new Promise<mqtt.MqttClient>((resolve, reject) => {
          const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, { username: `DCU-${c + 1}`, password: SECRET, clientId: `DCU-${c + 1}:bench`, reconnectPeriod: 0 });
          client.once('connect', () => resolve(client));
          client.once('error', reject);
        }),
      );
    }
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
        await Promise.all(Array.from({ length: o.inflight }, worker));
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    await Promise.all(clients.map((c) => c.endAsync()));
    await stopProcess(gateway);
    gateway = null;
    const stored = Number((await db.client.query('SELECT count(*) FROM readings')).rows[0].count);
    if (stored !== total) throw new Error(`stored ${stored} readings, sent ${total}`);

    await db.client.query('CREATE TABLE readings_raw (LIKE meter_readings INCLUDING ALL)');
    if (db.storage === 'timescaledb') await db.client.query(`SELECT create_hypertable('readings_raw', 'interval_start', chunk_time_interval => interval '7 days')`);
    const r0 = performance.now();
    await pipeline(Readable.from(copyChunks), db.client.query(copyFrom('COPY readings_raw (meter_key, interval_start, import_mwh, export_mwh, flags, received_at) FROM STDIN')));
    const rawSeconds = (performance.now() - r0) / 1000;

    const readingsPerSec = Math.round(total / seconds);
    const rawInsertPerSec = Math.round(total / rawSeconds);
    return {
      storage: db.storage,
      readings: total,
      connections: o.connections,
      readingsPerMessage: o.batch,
      inflightPerConnection: o.inflight,
      readingsPerSec,
      rawInsertPerSec,
      ratioToRawInsert: Math.round((readingsPerSec / rawInsertPerSec) * 100) / 100,
      ackLatencyMs: { p50: round1(percentile(latencies, 50)), p99: round1(percentile(latencies, 99)) },
    };
  } finally {
    for (const c of clients) c.end(true);
    await stopProcess(gateway);
    await db.drop();
  }
}
