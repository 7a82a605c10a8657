/**
 * Billing scenarios, against the stack running as its own process (`app/main.ts`: broker, gateway and
 * API in one process, as `npm start` runs them).
 *
 * billRun: `accounts` accounts with one 15-minute meter each on the example TOU tariff (tiers, TOU and flat
 * demand, daily and monthly charges, minimum, two taxes): July 2026 in Los Angeles and the first three
 * days of August, inserted in time order as the gateway writes them (all meters' readings of one interval
 * together); every 100th meter misses an hour (estimated at close); then the closed chunks in meter order
 * and VACUUM ANALYZE, as the database's upkeep has left them by the time a month closes. POST
 * /v1/billing-runs closes July. Closed chunks in meter order (migrations/014): a meter's month is read from
 * ~40 pages instead of ~3000.
 *
 * freshness: meters publish QoS 1 readings over MQTT; from each PUBACK to the first
 * GET /v1/accounts/{id}/charges that includes the reading, while other meters publish 100-reading
 * messages in the background. Then the latency of that request for an account whose meters hold most of
 * the open cycle: from memory (this process's gateway feeds it) and from an API-only process, which
 * re-reads the cycle from the database on every request. With `metering: 'net'` the timed meters are on a
 * net-metered tariff (URDB import, dgrules "Net Metering", a kWh bank whose true-up month leaves six
 * months of the settlement year before the open cycle) and hold those months of import and export: the
 * running charges carry in the bank and running net derived from that history.
 */
import { randomBytes } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { freePort } from '../../common/db.js';
import { cycleContaining } from '../../billing-api/billing/cycles.js';
import { exampleTariff } from '../../rating/index.js';
import { createBenchDatabase, percentile, round1, startProcess, stopProcess } from '../support.js';
import { reorderReadings } from '../../scripts/reorder-readings.js';

const ZONE = 'America/Los_Angeles';
const Q = 900_000;

type Log = (line: string) => void;

function apiClient(port: number, token: string) {
  return async (path: string, body?: unknown) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = (await res.json()) as any;
    if (res.status >= 300) throw new Error(`${path}: ${res.status} ${JSON.stringify(json).slice(0, 500)}`);
    return json;
  };
}

function stackEnv(url: string, token: string) {
  return { DATABASE_URL: url, BILLING_ADMIN_TOKEN: token, BILLING_CRON: 'off', API_HOST: '127.0.0.1', MQTT_HOST: '127.0.0.1', MQTT_WS_PORT: '0' };
}

export async function billRunScenario(o: { quick: boolean; log: Log; accounts?: number }) {
  const accounts = o.accounts ?? (o.quick ? 1_000 : 10_000);
  const db = await createBenchDatabase();
  const token = `bench-admin-${randomBytes(8).toString('hex')}`;
  let stack = null;
  try {
    const c = db.client;
    await c.query(`INSERT INTO tariffs (id, version, effective_from, document) VALUES ($1, 1, $2, $3)`, [exampleTariff.id, exampleTariff.effectiveFrom, JSON.stringify(exampleTariff)]);
    await c.query(`INSERT INTO accounts (id, name, timezone, billing_day) SELECT 'ACC-' || lpad(g::text, 6, '0'), 'Bench', $2, 1 FROM generate_series(1, $1) g`, [accounts, ZONE]);
    await c.query(`INSERT INTO devices (id, kind, secret_hash) SELECT 'MTR-' || lpad(g::text, 6, '0'), 'meter', 'x' FROM generate_series(1, $1) g`, [accounts]);
    await c.query(`INSERT INTO meters (id, account_id, timezone, interval_seconds) SELECT 'MTR-' || lpad(g::text, 6, '0'), 'ACC-' || lpad(g::text, 6, '0'), $2, 900 FROM generate_series(1, $1) g`, [accounts, ZONE]);
    await c.query(`INSERT INTO meter_tariffs (meter_id, effective_from, tariff_id) SELECT 'MTR-' || lpad(g::text, 6, '0'), '-infinity', $2 FROM generate_series(1, $1) g`, [accounts, exampleTariff.id]);
    const t0 = performance.now();
    const first = Date.parse('2026-07-01T07:00:00Z');
    const gapFrom = Date.parse('2026-07-15T17:00:00Z');
    for (let day = 0; day < 34; day++) {
      await c.query(
        `INSERT INTO readings (meter_id, interval_start, interval_seconds, import_mwh, export_mwh, quality)
         SELECT 'MTR-' || lpad(m::text, 6, '0'), t, 900,
                (40000 + (m * 7919 + s * 104729) % 300000 + CASE WHEN extract(hour FROM t AT TIME ZONE $4) BETWEEN 16 AND 20 THEN 150000 ELSE 0 END)::bigint,
                CASE WHEN m % 5 = 0 AND extract(hour FROM t AT TIME ZONE $4) BETWEEN 10 AND 15 THEN ((m + s) % 200000)::bigint ELSE 0 END, 'actual'
         FROM generate_series($2::int * 96, $2::int * 96 + 95) s
         CROSS JOIN LATERAL (SELECT to_timestamp($3::float8 / 1000) + s * interval '15 minutes' AS t) tt
         CROSS JOIN generate_series(1, $1) m
         WHERE NOT (m % 100 = 0 AND t >= to_timestamp($5::float8 / 1000) AND t < to_timestamp($5::float8 / 1000) + interval '1 hour')
         ORDER BY s, m`,
        [accounts, day, first, ZONE, gapFrom],
      );
    }
    // The database's own upkeep by the time a month closes: closed chunks in meter order (migrations/014,
    // `npm run reorder-readings` or the Timescale edition's reorder policy) and autovacuum.
    await reorderReadings({ databaseUrl: db.url });
    await c.query('VACUUM ANALYZE meter_readings');
    const rows = Number((await c.query('SELECT count(*) FROM readings')).rows[0].count);
    o.log(`billRun: loaded ${rows.toLocaleString('en')} readings for ${accounts} meters in ${((performance.now() - t0) / 1000).toFixed(0)} s (${db.storage})`);

    const port = await freePort();
    stack = await startProcess('app/main.ts', { ...stackEnv(db.url, token), API_PORT: String(port), MQTT_PORT: String(await freePort()) });
    const api = apiClient(port, token);
    const started = performance.now();
    // The run answers 202 at once; it is followed to its end.
    let run = await api('/v1/billing-runs', { asOf: '2026-08-05T00:00:00Z' });
    while (run.state === 'running') {
      await new Promise((resolve) => setTimeout(resolve, 100));
      run = await api(`/v1/billing-runs/${run.id}`);
    }
    const seconds = (performance.now() - started) / 1000;
    if (run.billsCreated !== accounts || run.failures.length) throw new Error(`billing run: ${JSON.stringify(run).slice(0, 800)}`);
    const sample = await api('/v1/bills/ACC-000100.2026-07-01');
    o.log(`billRun: ${accounts} bills in ${seconds.toFixed(1)} s; ACC-000100 total ${sample.total} ${sample.currency}, coverage ${JSON.stringify(sample.meters[0].coverage)}`);
    return { storage: db.storage, bills: accounts, readings: rows, runSeconds: round1(seconds), billsPerSec: Math.round(accounts / seconds) };
  } finally {
    await stopProcess(stack);
    await db.drop();
  }
}

async function connect(url: string, id: string, password: string): Promise<MqttClient> {
  const client = mqtt.connect(url, { username: id, password, clientId: `${id}:bench`, reconnectPeriod: 0 });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  return client;
}

/**
 * A URDB rate under net metering with a kWh bank: off-peak and a 16:00-21:00 weekday peak, a monthly
 * customer charge. Imported through POST /v1/tariffs/urdb with `netMetering` beside it.
 */
const NET_METERING_RATE = {
  label: 'bench-nem',
  name: 'Net metering with a kWh bank (bench)',
  dgrules: 'Net Metering',
  fixedchargefirstmeter: 10,
  fixedchargeunits: '$/month',
  energyratestructure: [[{ rate: 0.28, sell: 0.04 }], [{ rate: 0.52, sell: 0.08 }]],
  energyweekdayschedule: Array.from({ length: 12 }, () => Array.from({ length: 24 }, (_, h) => (h >= 16 && h < 21 ? 1 : 0))),
  energyweekendschedule: Array.from({ length: 12 }, () => Array(24).fill(0)),
};
/** Months of the settlement year before the open cycle's month, under `metering: 'net'`. */
const HISTORY_MONTHS = 6;

/** Local month (1-12) of an instant in the zone. */
function localMonth(instant: number, zone: string): number {
  return Number(new Date(instant).toLocaleString('en-US', { timeZone: zone, month: 'numeric' }));
}

const publish = (c: MqttClient, topic: string, payload: string) => new Promise<void>((r, j) => c.publish(topic, payload, { qos: 1 }, (e) => (e ? j(e) : r())));

export async function freshnessScenario(o: { quick: boolean; log: Log; samples?: number; freshMeters?: number; loadMeters?: number; metering?: 'plain' | 'net' }) {
  const net = o.metering === 'net';
  const samples = o.samples ?? (o.quick ? 100 : 500);
  const freshMeters = o.freshMeters ?? 20;
  const loadMeters = o.loadMeters ?? 10;
  const db = await createBenchDatabase();
  const token = `bench-admin-${randomBytes(8).toString('hex')}`;
  const clients: MqttClient[] = [];
  let stack = null;
  let apiOnly = null;
  try {
    const [port, mqttPort, dbPort] = [await freePort(), await freePort(), await freePort()];
    stack = await startProcess('app/main.ts', { ...stackEnv(db.url, token), API_PORT: String(port), MQTT_PORT: String(mqttPort) });
    const api = apiClient(port, token);
    const now = Date.now();
    // A billing day eight days back: the open cycle holds at least a week.
    const billingDay = Math.min(28, Number(new Date(now - 8 * 86_400_000).toLocaleString('en-US', { timeZone: ZONE, day: 'numeric' })));
    await api('/v1/tariffs', exampleTariff);
    const cycle = cycleContaining(now, ZONE, billingDay);
    // The true-up month: the settlement year (from the month after it) starts HISTORY_MONTHS months before
    // the month of the open cycle's last day.
    const trueUpMonth = ((localMonth(cycle.to - 1, ZONE) - HISTORY_MONTHS - 2 + 24) % 12) + 1;
    if (net) await api('/v1/tariffs/urdb', { timezone: ZONE, rate: NET_METERING_RATE, netMetering: { carryOver: 'kWh', trueUpMonth, trueUpSellRate: '0.03' } });
    const freshTariff = net ? NET_METERING_RATE.label : exampleTariff.id;
    for (const [id, meters] of [['FRESH', freshMeters], ['LOAD', loadMeters]] as const) {
      await api('/v1/accounts', { id, name: id, timezone: ZONE, billingDay });
      for (let i = 1; i <= meters; i++) {
        const m = await api('/v1/meters', { id: `${id}-${i}`, accountId: id, timezone: ZONE, intervalSeconds: 900, tariffId: id === 'FRESH' ? freshTariff : exampleTariff.id });
        clients.push(await connect(`mqtt://127.0.0.1:${mqttPort}`, m.id, m.mqttPassword));
      }
    }
    const fresh = clients.slice(0, freshMeters);
    const load = clients.slice(freshMeters);
    // FRESH's meters hold the open cycle up to a day ago (inserted directly, before the first request
    // loads them into memory); the samples fill the last day.
    const cycleFrom = cycle.from;
    const dayAgo = Math.floor((now - 86_400_000) / Q) * Q;
    // Under net metering the meters also export (10:00-15:00 local) and hold the settlement year before the
    // open cycle (from HISTORY_MONTHS + 1 months back, so it is covered whatever the day of the month).
    const historyFrom = net ? Math.floor((cycleFrom - (HISTORY_MONTHS + 1) * 31 * 86_400_000) / Q) * Q : cycleFrom;
    // The last day before the open cycle is left unread: the late samples fill it (late data of the
    // closed cycle, which changes what is carried into the open one).
    const lateGap = net ? { from: cycleFrom - 96 * Q, to: cycleFrom } : { from: 0, to: 0 };
    await db.client.query(
      `INSERT INTO readings (meter_id, interval_start, interval_seconds, import_mwh, export_mwh, quality)
       SELECT 'FRESH-' || m, t, 900, 100000 + (m * 31 + s * 17) % 200000,
              CASE WHEN $4 AND extract(hour FROM t AT TIME ZONE $5) BETWEEN 10 AND 14 THEN 1000000 + (m * 13 + s * 7) % 500000 ELSE 0 END, 'actual'
       FROM generate_series(1, $1) m, generate_series(0, (($3::float8 - $2::float8) / 900000)::int - 1) s
       CROSS JOIN LATERAL (SELECT to_timestamp($2::float8 / 1000) + s * interval '15 minutes' AS t) tt
       WHERE NOT (t >= to_timestamp($6::float8 / 1000) AND t < to_timestamp($7::float8 / 1000))`,
      [freshMeters, historyFrom, dayAgo, net, ZONE, lateGap.from, lateGap.to],
    );
    const intervalsPerMeter = Math.round((dayAgo - cycleFrom) / Q);
    const t0 = performance.now();
    const initial = await api('/v1/accounts/FRESH/charges');
    const firstRequestMs = performance.now() - t0;
    if (net) {
      // The bench measures what it claims: the open cycle carries in a bank derived from the history.
      const carriedIn = initial.meters[0].metering?.carriedIn;
      if (!carriedIn || (carriedIn.banks.length === 0 && Number(carriedIn.runningNetKwh) === 0))
        throw new Error(`freshness --metering net: nothing carried into the open cycle: ${JSON.stringify(initial.meters[0].metering ?? null).slice(0, 500)}`);
      o.log(`freshness: net metering, true-up month ${trueUpMonth}, ${Math.round((cycleFrom - historyFrom - (lateGap.to - lateGap.from)) / Q)} intervals per meter before the open cycle; FRESH-1 carries in ${JSON.stringify(carriedIn)}; first request ${firstRequestMs.toFixed(0)} ms`);
    }
    // meters are listed by id ('FRESH-1', 'FRESH-10', ...): index them by id
    const expected = new Map<string, number>(initial.meters.map((m: any) => [m.meterId, m.coverage.actualIntervals]));

    let loading = true;
    let background = 0;
    const backgroundLoad = (async () => {
      for (let k = 0; loading; k++) {
        const c = load[k % load.length];
        const base = dayAgo - (1 + Math.floor(k / load.length)) * 100 * Q; // backwards through the cycle
        if (base < cycleFrom) break;
        const readings = Array.from({ length: 100 }, (_, j) => ({ intervalStart: new Date(base + j * Q).toISOString(), intervalSeconds: 900, importWh: 100 + j }));
        await publish(c, `meters/${c.options.username}/readings`, JSON.stringify({ readings }));
        background += 100;
      }
    })();

    const freshness: number[] = [];
    let firstTry = 0;
    for (let k = 0; k < samples; k++) {
      const i = k % freshMeters;
      const meterId = `FRESH-${i + 1}`;
      const slot = dayAgo + Math.floor(k / freshMeters) * Q;
      if (slot > now - 3_600_000) break;
      await publish(fresh[i], `meters/${meterId}/readings`, JSON.stringify({ intervalStart: new Date(slot).toISOString(), intervalSeconds: 900, importWh: 1234.5 }));
      const acked = performance.now();
      expected.set(meterId, expected.get(meterId)! + 1);
      for (let n = 1; ; n++) {
        const body = await api('/v1/accounts/FRESH/charges');
        if (body.meters.find((m: any) => m.meterId === meterId).coverage.actualIntervals >= expected.get(meterId)!) {
          freshness.push(performance.now() - acked);
          if (n === 1) firstTry++;
          break;
        }
        if (performance.now() - acked > 10_000) {
          const q = await db.client.query('SELECT reason, detail, meter_id, interval_start FROM quarantine ORDER BY id DESC LIMIT 3');
          const r = await db.client.query('SELECT quality, received_at FROM readings WHERE meter_id = $1 AND interval_start = $2', [meterId, new Date(slot)]);
          throw new Error(`reading ${meterId} ${new Date(slot).toISOString()} not visible after 10 s: ${JSON.stringify({ expected: expected.get(meterId), stored: r.rows, quarantine: q.rows })}`);
        }
      }
    }
    // Under net metering: a reading of the day before the open cycle (late data, 2 kWh exported) from
    // its PUBACK to the first GET whose carried-in running net includes it.
    const late: number[] = [];
    if (net) {
      const lateSamples = o.quick ? 20 : 60;
      const runningNet = new Map<string, string>(
        (await api('/v1/accounts/FRESH/charges')).meters.map((m: any) => [m.meterId, m.metering.carriedIn.runningNetKwh]),
      );
      for (let k = 0; k < lateSamples; k++) {
        const i = k % freshMeters;
        const meterId = `FRESH-${i + 1}`;
        const slot = lateGap.from + Math.floor(k / freshMeters) * Q;
        await publish(fresh[i], `meters/${meterId}/readings`, JSON.stringify({ intervalStart: new Date(slot).toISOString(), intervalSeconds: 900, importWh: 0, exportWh: 2000 }));
        const acked = performance.now();
        for (;;) {
          const body = await api('/v1/accounts/FRESH/charges');
          const carried = body.meters.find((m: any) => m.meterId === meterId).metering.carriedIn.runningNetKwh;
          if (carried !== runningNet.get(meterId)) {
            late.push(performance.now() - acked);
            runningNet.set(meterId, carried);
            break;
          }
          if (performance.now() - acked > 10_000) throw new Error(`late reading ${meterId} ${new Date(slot).toISOString()} not carried into the open cycle after 10 s`);
        }
      }
    }
    loading = false;
    await backgroundLoad;

    apiOnly = await startProcess('app/billing-api.main.ts', { ...stackEnv(db.url, token), API_PORT: String(dbPort) });
    const latency = async (p: number) => {
      const get = apiClient(p, token);
      for (let i = 0; i < 10; i++) await get('/v1/accounts/FRESH/charges');
      const times: number[] = [];
      for (let i = 0; i < 100; i++) {
        const t = performance.now();
        await get('/v1/accounts/FRESH/charges');
        times.push(performance.now() - t);
      }
      return { p50Ms: round1(percentile(times, 50)), p99Ms: round1(percentile(times, 99)) };
    };
    const memory = await latency(port);
    const database = await latency(dbPort);
    o.log(`freshness: ${freshness.length} samples, ${firstTry} visible to the first GET after the PUBACK, ${background} background readings${net ? `; ${late.length} late readings before the open cycle` : ''}`);
    return {
      storage: db.storage,
      metering: net ? 'net' : 'plain',
      ...(net
        ? {
            history: { trueUpMonth, intervalsPerMeter: Math.round((cycleFrom - historyFrom - (lateGap.to - lateGap.from)) / Q), firstRequestMs: round1(firstRequestMs) },
            lateHistory: { samples: late.length, p50Ms: round1(percentile(late, 50)), p99Ms: round1(percentile(late, 99)), maxMs: round1(Math.max(...late)) },
          }
        : {}),
      samples: freshness.length,
      p50Ms: round1(percentile(freshness, 50)),
      p99Ms: round1(percentile(freshness, 99)),
      maxMs: round1(Math.max(...freshness)),
      visibleToFirstGet: firstTry,
      backgroundReadings: background,
      accountCharges: { meters: freshMeters, intervalsPerMeter, fromMemory: memory, rereadingDatabase: database },
    };
  } finally {
    for (const c of clients) c.end(true);
    await stopProcess(apiOnly);
    await stopProcess(stack);
    await db.drop();
  }
}
