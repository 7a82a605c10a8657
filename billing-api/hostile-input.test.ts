/**
 * Hostile input against the billing API, the shared parsing rules and the schema, through the public
 * interfaces (HTTP against the real Fastify server, MQTT against the real broker) on a real database:
 * each attack is reproduced and refused, while a legitimate account and meter keep being served.
 */
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, storageModes } from '../test/support/database.js';
import { startTestStack, TEST_ADMIN_TOKEN, type TestStack } from '../test/support/stack.js';
import { connectDevice, endClient, publishAcked, reading, slot } from '../test/support/mqtt.js';
import { createLogger } from '../common/logger.js';
import { createMetrics } from '../common/metrics.js';
import { parseInstant } from '../common/reading.js';
import { postgresZoneNames, zoneProblem } from '../common/timezones.js';
import { buildApp, createBillingApi } from './index.js';
import { BOOTSTRAP_TOKEN_ID } from './provisioning/admin-token.js';
import { tokenDigester } from './provisioning/token-digest.js';
import { billingRun, createTariff, flatTariff } from './test-support.js';

const mode = storageModes()[0];
const METRICS_TOKEN = 'metrics-scrape-token-0123456789';
const BACKFILL_DAYS = 400;

let stack: TestStack;
/** A legitimate account and meter, used throughout to show the service keeps serving. */
let goodSecret: string;

beforeAll(async () => {
  stack = await startTestStack(mode, { READING_BACKFILL_DAYS: String(BACKFILL_DAYS), METRICS_TOKEN });
  expect((await stack.api('/v1/accounts', { body: { id: 'ACC-GOOD', name: 'Good', timezone: 'Europe/London', billingDay: 1 } })).status).toBe(201);
  const meter = await stack.api('/v1/meters', { body: { id: 'MTR-GOOD', accountId: 'ACC-GOOD', timezone: 'Europe/London', intervalSeconds: 900 } });
  expect(meter.status).toBe(201);
  goodSecret = meter.body.mqttPassword;
});
afterAll(async () => {
  await stack?.close();
});

const fields = (res: { body: any }) => (res.body?.error?.details ?? []).map((d: { field?: string }) => d.field);

/** The legitimate meter publishes one reading and finds it stored. */
async function legitimateDeviceIsServed(k: number): Promise<void> {
  const client = await connectDevice(stack.mqttUrl, 'MTR-GOOD', goodSecret);
  try {
    const start = slot('2026-11-01T00:00:00Z', k);
    await publishAcked(client, 'meters/MTR-GOOD/readings', JSON.stringify(reading(start, 1.5)));
    const res = await stack.api(`/v1/meters/MTR-GOOD/readings?from=${start}&to=${slot(start, 1)}`);
    expect(res.status).toBe(200);
    expect(res.body.items).toHaveLength(1);
  } finally {
    await endClient(client);
  }
}

describe(`time zones every component knows (${mode} storage)`, () => {
  it('refuses zones ICU knows and PostgreSQL does not, for accounts and meters, naming the field', async () => {
    for (const zone of ['US/Pacific-New', 'Canada/East-Saskatchewan']) {
      const account = await stack.api('/v1/accounts', { body: { id: 'ACC-TZ', name: 'Zone', timezone: zone, billingDay: 1 } });
      expect(account.status, JSON.stringify(account.body)).toBe(400);
      expect(fields(account)).toEqual(['body.timezone']);
      expect(account.body.error.details[0].message).toContain('not known to the database');
      const meter = await stack.api('/v1/meters', { body: { id: 'MTR-TZ', accountId: 'ACC-GOOD', timezone: zone, intervalSeconds: 900 } });
      expect(meter.status, JSON.stringify(meter.body)).toBe(400);
      expect(fields(meter)).toEqual(['body.timezone']);
    }
    expect((await stack.api('/v1/meters/MTR-TZ')).status).toBe(404);
    expect((await stack.api('/v1/accounts', { body: { id: 'ACC-TZ', name: 'Zone', timezone: 'America/Los_Angeles', billingDay: 1 } })).status).toBe(201);
    await legitimateDeviceIsServed(0);
  });

  it('the reusable check: one load of pg_timezone_names per pool; luxon and PostgreSQL must both know the zone', async () => {
    const names = await postgresZoneNames(stack.pool);
    expect(names.has('Europe/London')).toBe(true);
    expect(names.has('US/Pacific-New')).toBe(false);
    expect(await postgresZoneNames(stack.pool)).toBe(names);
    expect(await zoneProblem(stack.pool, 'Asia/Kolkata')).toBeNull();
    expect(await zoneProblem(stack.pool, 'Mars/Olympus')).toMatch(/not an IANA time zone/);
    expect(await zoneProblem(stack.pool, 'Canada/East-Saskatchewan')).toMatch(/not known to the database/);
  });

  it('migration 009 names existing rows whose zone PostgreSQL does not know, and does not fail', async () => {
    const db = await createTestDatabase('plain', 'zones');
    try {
      await db.pool.query(`INSERT INTO accounts (id, name, timezone, billing_day) VALUES ('ACC-OLD', 'Old', 'US/Pacific-New', 1), ('ACC-FINE', 'Fine', 'Europe/Paris', 1)`);
      await db.pool.query(`INSERT INTO devices (id, kind, secret_hash) VALUES ('MTR-OLD', 'meter', 'x')`);
      await db.pool.query(`INSERT INTO meters (id, account_id, timezone, interval_seconds) VALUES ('MTR-OLD', 'ACC-FINE', 'Canada/East-Saskatchewan', 900)`);
      const sql = readFileSync(new URL('../migrations/009_unknown_time_zones.sql', import.meta.url), 'utf8').split('-- Down Migration')[0];
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      const warnings: string[] = [];
      client.on('notice', (n) => warnings.push(`${n.severity}: ${n.message}`));
      try {
        await client.query(sql);
      } finally {
        await client.end();
      }
      expect(warnings).toEqual([
        'WARNING: account "ACC-OLD" has time zone "US/Pacific-New", which PostgreSQL does not know: correct it to a current IANA name',
        'WARNING: meter "MTR-OLD" has time zone "Canada/East-Saskatchewan", which PostgreSQL does not know: correct it to a current IANA name',
        'WARNING: 2 row(s) with time zones PostgreSQL does not know (listed above)',
      ]);
    } finally {
      await db.drop();
    }
  });
});

describe(`a reset clock cannot reach back decades (${mode} storage)`, () => {
  it('readings before the service window are quarantined as before_service_window; the meter\'s other readings are stored; no chunk is created for them', async () => {
    const tariff = flatTariff('flat-hostile', { timeZone: 'Europe/London', rate: '0.20', perDay: '0.50' });
    await createTariff(stack, tariff);
    expect((await stack.api('/v1/accounts', { body: { id: 'ACC-CLOCK', name: 'Clock', timezone: 'Europe/London', billingDay: 1 } })).status).toBe(201);
    const meter = await stack.api('/v1/meters', { body: { id: 'MTR-CLOCK', accountId: 'ACC-CLOCK', timezone: 'Europe/London', intervalSeconds: 900, tariffId: 'flat-hostile' } });
    expect(meter.status).toBe(201);
    const createdAt = Date.parse(meter.body.createdAt);

    const inWindow = new Date(Math.floor((createdAt - 200 * 86_400_000) / 86_400_000) * 86_400_000).toISOString().replace('.000Z', 'Z');
    const hostile = ['1970-01-01T00:00:00Z', '1900-01-01T00:00:00Z', '0099-01-01T00:00:00Z', '0000-01-01T00:00:00Z'];
    // One message of weekly readings from 1950: each would have been its own chunk.
    const weekly = Array.from({ length: 300 }, (_, k) => slot('1950-01-02T00:00:00Z', k, 7 * 86_400));
    const client = await connectDevice(stack.mqttUrl, 'MTR-CLOCK', meter.body.mqttPassword);
    try {
      await publishAcked(client, 'meters/MTR-CLOCK/readings', JSON.stringify({ readings: [...hostile.map((s) => reading(s, 1)), reading(inWindow, 2), reading('2026-11-29T00:00:00Z', 3)] }));
      await publishAcked(client, 'meters/MTR-CLOCK/readings', JSON.stringify({ readings: weekly.map((s) => reading(s, 1)) }));
    } finally {
      await endClient(client);
    }
    await legitimateDeviceIsServed(1);

    const stored = await stack.pool.query(`SELECT interval_start FROM readings WHERE meter_id = 'MTR-CLOCK' ORDER BY interval_start`);
    expect(stored.rows.map((r) => r.interval_start.toISOString().replace('.000Z', 'Z'))).toEqual([inWindow, '2026-11-29T00:00:00Z']);
    const quarantined = await stack.api('/v1/quarantine?deviceId=MTR-CLOCK&limit=1000');
    expect(quarantined.status).toBe(200);
    expect(quarantined.body.items).toHaveLength(hostile.length + weekly.length);
    expect(new Set(quarantined.body.items.map((q: { reason: string }) => q.reason))).toEqual(new Set(['before_service_window']));
    // The quarantine record keeps the exact instant: year 99 stays year 99.
    const years = await stack.pool.query(`SELECT DISTINCT extract(year FROM interval_start)::int AS y FROM quarantine WHERE device_id = 'MTR-CLOCK' AND interval_start < '1951-01-01' ORDER BY 1`);
    expect(years.rows.map((r) => r.y)).toEqual([-1, 99, 1900, 1950]); // PostgreSQL counts 1 BC (ISO year 0000) as -1
    expect(await chunksBefore('2000-01-01T00:00:00Z')).toBe(stack.storageMode === 'timescaledb' ? 0 : null);
  });

  it('the next billing run bills from the service start only: no bill in 1970, none before the earliest reading in the window', async () => {
    const run = await billingRun(stack, new Date().toISOString());
    expect(run.status, JSON.stringify(run.body)).toBe(202);
    expect(run.body.state).toBe('finished');
    const bills = await stack.api('/v1/accounts/ACC-CLOCK/bills?limit=1000');
    expect(bills.status).toBe(200);
    const starts: number[] = bills.body.items.map((b: { cycle: { from: string } }) => Date.parse(b.cycle.from));
    expect(starts.length).toBeGreaterThan(0);
    expect(starts.length).toBeLessThanOrEqual(8);
    const windowStart = Date.now() - (BACKFILL_DAYS + 1) * 86_400_000;
    for (const s of starts) expect(s).toBeGreaterThan(windowStart);
    const estimates = await stack.pool.query(`SELECT count(*)::int AS n FROM readings WHERE meter_id = 'MTR-CLOCK' AND interval_start < now() - interval '${BACKFILL_DAYS + 31} days'`);
    expect(estimates.rows[0].n).toBe(0);
  });

  it('a reading stored before the window existed does not move the service start either', async () => {
    expect((await stack.api('/v1/accounts', { body: { id: 'ACC-LEGACY', name: 'Legacy', timezone: 'Europe/London', billingDay: 1 } })).status).toBe(201);
    expect((await stack.api('/v1/meters', { body: { id: 'MTR-LEGACY', accountId: 'ACC-LEGACY', timezone: 'Europe/London', intervalSeconds: 900, tariffId: 'flat-hostile' } })).status).toBe(201);
    // As an older release stored it.
    await stack.pool.query(`INSERT INTO readings (meter_id, interval_start, interval_seconds, import_mwh, export_mwh, quality) VALUES ('MTR-LEGACY', '1970-01-01T00:00:00Z', 900, 1000, 0, 'actual')`);
    expect((await billingRun(stack, new Date().toISOString())).body.state).toBe('finished');
    const bills = await stack.api('/v1/accounts/ACC-LEGACY/bills');
    expect(bills.body.items).toEqual([]);
  });
});

/** TimescaleDB chunks of readings that start before `instant` (null on a plain table, which has none). */
async function chunksBefore(instant: string): Promise<number | null> {
  if (stack.storageMode !== 'timescaledb') return null;
  const res = await stack.pool.query(`SELECT count(*)::int AS n FROM timescaledb_information.chunks WHERE hypertable_name = 'meter_readings' AND range_start < $1`, [instant]);
  return res.rows[0].n;
}

describe('instants: years 0000-0099 are read exactly', () => {
  it('parses every four-digit year as written', () => {
    expect(new Date(parseInstant('0099-01-01T00:00:00Z')!).toISOString()).toBe('0099-01-01T00:00:00.000Z');
    expect(new Date(parseInstant('0000-01-01T00:00:00Z')!).toISOString()).toBe('0000-01-01T00:00:00.000Z');
    expect(new Date(parseInstant('0004-02-29T12:30:00+01:00')!).toISOString()).toBe('0004-02-29T11:30:00.000Z');
    expect(parseInstant('0100-02-29T00:00:00Z')).toBeNull(); // 100 is not a leap year
    expect(new Date(parseInstant('9999-12-31T23:59:59.999Z')!).toISOString()).toBe('9999-12-31T23:59:59.999Z');
  });

  it('API query, tariff assignment and billing-run instants keep the year', async () => {
    const readings = await stack.api('/v1/meters/MTR-GOOD/readings?from=0099-01-01T00:00:00Z&to=0099-01-02T00:00:00Z&limit=1');
    expect(readings.status).toBe(200);
    expect(readings.body.items).toEqual([]);
    // The quarantine window is on the time received: nothing arrived in year 0-99, and 0000 is no 1900.
    const q = await stack.api('/v1/quarantine?from=0000-01-01T00:00:00Z&to=0100-01-01T00:00:00Z&limit=100');
    expect(q.status).toBe(200);
    expect(q.body.items).toEqual([]);
    const assigned = await stack.api('/v1/meters/MTR-CLOCK/tariff', { method: 'PUT', body: { tariffId: 'flat-hostile', effectiveFrom: '0099-01-01T00:00:00Z' } });
    const stored = await stack.pool.query(`SELECT extract(year FROM effective_from)::int AS y FROM meter_tariffs WHERE meter_id = 'MTR-CLOCK' AND effective_from > '-infinity' AND effective_from < '1900-01-01'`);
    // Either accepted at year 99 exactly, or refused; never stored as 1999.
    if (assigned.status < 300) expect(stored.rows.map((r) => r.y)).toEqual([99]);
    else expect(stored.rows).toEqual([]);
    const none1999 = await stack.pool.query(`SELECT count(*)::int AS n FROM meter_tariffs WHERE meter_id = 'MTR-CLOCK' AND effective_from >= '1999-01-01' AND effective_from < '2000-01-01'`);
    expect(none1999.rows[0].n).toBe(0);
    const run = await billingRun(stack, '0099-01-01T00:00:00Z');
    expect(run.status, JSON.stringify(run.body)).toBe(202);
    expect(JSON.stringify(run.body)).toContain('0099-01-01T00:00:00');
    expect(JSON.stringify(run.body)).not.toContain('1999-01-01');
  });
});

describe('NUL bytes and invalid numbers answer 400 naming the field', () => {
  it('sweeps every route of the OpenAPI document with a NUL byte in path ids, query strings and JSON strings', async () => {
    const doc = (await stack.api('/openapi.json')).body;
    const tried: string[] = [];
    const failures: string[] = [];
    for (const [path, ops] of Object.entries<any>(doc.paths)) {
      if (path.startsWith('/docs')) continue;
      for (const [method, op] of Object.entries<any>(ops)) {
        const hasId = path.includes('{id}');
        const url = (id: string) => path.replace('{id}', encodeURIComponent(id));
        const attempts: { what: string; url: string; body?: unknown; field: string }[] = [];
        if (hasId) attempts.push({ what: 'id', url: url('MTR-GOOD\u0000x'), field: 'params.id', body: method === 'get' || method === 'delete' ? undefined : {} });
        for (const p of (op.parameters ?? []).filter((p: any) => p.in === 'query')) {
          attempts.push({ what: `query ${p.name}`, url: `${url('MTR-GOOD')}?${p.name}=${encodeURIComponent('a\u0000b')}`, field: `querystring.${p.name}`, body: method === 'get' || method === 'delete' ? undefined : {} });
        }
        const schema = op.requestBody?.content?.['application/json']?.schema;
        if (schema) {
          const props = Object.keys(schema.properties ?? {});
          for (const prop of props.length ? props : ['id']) {
            attempts.push({ what: `body ${prop}`, url: url('MTR-GOOD'), body: { [prop]: 'a\u0000b' }, field: `body.${prop}` });
          }
        }
        for (const a of attempts) {
          const res = await stack.api(a.url, { method: method.toUpperCase(), body: a.body });
          tried.push(`${method.toUpperCase()} ${path} ${a.what}`);
          if (res.status !== 400 || !fields(res).includes(a.field)) failures.push(`${method.toUpperCase()} ${path} ${a.what}: ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
        }
      }
    }
    expect(failures).toEqual([]);
    expect(tried.length).toBeGreaterThanOrEqual(30);
    // Nested strings and keys too.
    const nested = await stack.api('/v1/concentrators', { body: { id: 'CON-NUL', meterIds: ['MTR-GOOD', 'x\u0000'] } });
    expect(nested.status).toBe(400);
    expect(fields(nested)).toEqual(['body.meterIds.1']);
    const key = await stack.api('/v1/accounts', { body: { id: 'ACC-K', name: 'K', timezone: 'UTC', billingDay: 1, ['evil\u0000']: 1 } });
    expect(key.status).toBe(400);
    expect(fields(key)).toEqual(['body.evil\\u0000']);
    await legitimateDeviceIsServed(2);
  });

  it('a tiny positive maxPowerKw is a 400, not a database error; 0.001 kW is accepted', async () => {
    for (const maxPowerKw of [0.0001, 1e-300, 5e-324, 0.0005, 12.3456]) {
      const res = await stack.api('/v1/meters', { body: { id: 'MTR-TINY', accountId: 'ACC-GOOD', timezone: 'Europe/London', intervalSeconds: 900, maxPowerKw } });
      expect(res.status, `${maxPowerKw}: ${JSON.stringify(res.body)}`).toBe(400);
      expect(new Set(fields(res))).toEqual(new Set(['body.maxPowerKw']));
    }
    const ok = await stack.api('/v1/meters', { body: { id: 'MTR-TINY', accountId: 'ACC-GOOD', timezone: 'Europe/London', intervalSeconds: 900, maxPowerKw: 0.001 } });
    expect(ok.status, JSON.stringify(ok.body)).toBe(201);
    expect(ok.body.maxPowerKw).toBe('0.001');
  });
});

describe('ids a database or a tool could misread are refused at creation', () => {
  const refused = ['NULL', 'null', 'Null', 'nULl', '', ' ACC', 'ACC ', 'A\tB', 'A\nB', 'A\u0007B', 'a/b', 'a+b', 'a#b', '.', '..', '.hidden', '-rf', 'x'.repeat(65), 'Ä'];
  it('accounts, meters and concentrators: 400 naming body.id', async () => {
    for (const id of refused) {
      const account = await stack.api('/v1/accounts', { body: { id, name: 'n', timezone: 'UTC', billingDay: 1 } });
      expect(account.status, JSON.stringify(id)).toBe(400);
      expect(fields(account)).toContain('body.id');
      const meter = await stack.api('/v1/meters', { body: { id, accountId: 'ACC-GOOD', timezone: 'UTC', intervalSeconds: 900 } });
      expect(meter.status, JSON.stringify(id)).toBe(400);
      expect(fields(meter)).toContain('body.id');
      const concentrator = await stack.api('/v1/concentrators', { body: { id, meterIds: [] } });
      expect(concentrator.status, JSON.stringify(id)).toBe(400);
      expect(fields(concentrator)).toContain('body.id');
    }
    const stored = await stack.pool.query(`SELECT id FROM devices WHERE lower(id) = 'null' UNION ALL SELECT id FROM accounts WHERE lower(id) = 'null'`);
    expect(stored.rows).toEqual([]);
  });

  it('ids that merely contain those words or characters inside stay valid', async () => {
    for (const id of ['NULL-1', 'nullable', 'a.b', 'a-b', 'a_b', '9.x-']) {
      expect((await stack.api('/v1/concentrators', { body: { id, meterIds: [] } })).status, id).toBe(201);
    }
  });
});

describe('tokens: revocation is final, storage is keyed, /metrics needs a token', () => {
  it('a revoked bootstrap admin token stays refused after a restart on the same database', async () => {
    const db = await createTestDatabase(mode, 'revoke');
    const extra = {};
    let first: TestStack | null = await startTestStack(mode, extra, db.url);
    try {
      // A second admin would be needed to act afterwards; the bootstrap token revokes itself.
      expect((await first.api('/v1/accounts')).status).toBe(200);
      expect((await first.api(`/v1/tokens/${BOOTSTRAP_TOKEN_ID}`, { method: 'DELETE' })).status).toBe(204);
      expect((await first.api('/v1/accounts')).status).toBe(401);
      await first.stop();
      first = null;
      const second = await startTestStack(mode, extra, db.url);
      try {
        const res = await second.api('/v1/accounts');
        expect(res.status).toBe(401);
        // A new value gives a working bootstrap token; the revoked value stays refused even when configured again.
        await second.stop();
        const third = await startTestStack(mode, { ...extra, BILLING_ADMIN_TOKEN: 'a-new-operator-token-0123456789' }, db.url);
        try {
          expect((await third.api('/v1/accounts', { token: 'a-new-operator-token-0123456789' })).status).toBe(200);
          expect((await third.api('/v1/accounts', { token: TEST_ADMIN_TOKEN })).status).toBe(401);
        } finally {
          await third.stop();
        }
        const fourth = await startTestStack(mode, extra, db.url);
        try {
          expect((await fourth.api('/v1/accounts')).status).toBe(401);
          expect((await fourth.api('/v1/accounts', { token: 'a-new-operator-token-0123456789' })).status).toBe(401);
        } finally {
          await fourth.stop();
        }
      } finally {
        await second.stop().catch(() => {});
      }
    } finally {
      await first?.stop();
      await db.drop();
    }
  });

  it('stored token hashes are keyed, never sha256(token); plain SHA-256 rows from before are re-keyed at start-up and keep working', async () => {
    const sha = (s: string) => createHash('sha256').update(s).digest();
    const rows = await stack.pool.query(`SELECT id, token_hash, hash_scheme FROM api_tokens`);
    expect(rows.rows.length).toBeGreaterThan(0);
    for (const r of rows.rows) expect(r.hash_scheme).toBe('hmac-sha256');
    const boot = rows.rows.find((r) => r.id === BOOTSTRAP_TOKEN_ID)!;
    expect(Buffer.compare(boot.token_hash, sha(TEST_ADMIN_TOKEN))).not.toBe(0);

    const db = await createTestDatabase(mode, 'rekey');
    try {
      const legacyToken = 'smbg_legacy-reader-token-stored-as-plain-sha256';
      await db.pool.query(`INSERT INTO api_tokens (id, token_hash, role, hash_scheme) VALUES ('tok_legacy', $1, 'reader', 'sha256')`, [sha(legacyToken)]);
      const s = await startTestStack(mode, {}, db.url);
      try {
        const row = await s.pool.query(`SELECT token_hash, hash_scheme FROM api_tokens WHERE id = 'tok_legacy'`);
        expect(row.rows[0].hash_scheme).toBe('hmac-sha256');
        expect(Buffer.compare(row.rows[0].token_hash, sha(legacyToken))).not.toBe(0);
        expect(Buffer.compare(row.rows[0].token_hash, (await tokenDigester(s.pool))(legacyToken))).toBe(0);
        expect((await s.api('/v1/accounts', { token: legacyToken })).status).toBe(200);
      } finally {
        await s.stop();
      }
    } finally {
      await db.drop();
    }
  });

  it('/metrics answers 401 without a token and 200 with METRICS_TOKEN, which opens nothing else; probes stay public', async () => {
    expect((await stack.api('/metrics', { token: null })).status).toBe(401);
    const scraped = await stack.api('/metrics', { token: METRICS_TOKEN });
    expect(scraped.status).toBe(200);
    expect(scraped.body).toMatch(/^# TYPE readings_ingested_total counter$/m);
    expect((await stack.api('/v1/accounts', { token: METRICS_TOKEN })).status).toBe(401);
    expect((await stack.api('/healthz', { token: null })).status).toBe(200);
    expect((await stack.api('/readyz', { token: null })).status).toBe(200);
  });

  it('/metrics is rate limited like every route; probes are not', async () => {
    const log = createLogger('silent');
    const services = createBillingApi(stack.pool, log, { scryptN: 1024, graceDays: 3, live: false, cacheMeters: 0 });
    const app = await buildApp({ services, log, metrics: createMetrics(), readiness: [], rateLimitPerMinute: 3, metricsToken: METRICS_TOKEN });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).statusCode);
      expect(statuses).toEqual([200, 200, 200, 429, 429]);
      const anonymous: number[] = [];
      for (let i = 0; i < 5; i++) anonymous.push((await app.inject({ method: 'GET', url: '/metrics' })).statusCode);
      expect(anonymous).toEqual([401, 401, 401, 429, 429]);
      for (let i = 0; i < 5; i++) expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });
});
