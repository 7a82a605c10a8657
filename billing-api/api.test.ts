/**
 * The REST API of contract section 3 over real HTTP, against the real stack (broker, gateway, API) and a
 * real database: provisioning, auth roles and token scoping, the error format, readings and quarantine
 * paging, operations endpoints, OpenAPI, and the bootstrap admin token.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, storageModes, type TestDatabase } from '../test/support/database.js';
import { startTestStack, TEST_ADMIN_TOKEN, type TestStack } from '../test/support/stack.js';
import { connectDevice, endClient } from '../test/support/mqtt.js';
import { createLogger } from '../common/logger.js';
import type { Pool } from '../common/db.js';
import { createMetrics } from '../common/metrics.js';
import { buildApp, createBillingApi } from './index.js';
import { BOOTSTRAP_TOKEN_ID, ensureAdminToken } from './provisioning/admin-token.js';
import { tokenDigester } from './provisioning/token-digest.js';

/** The application production runs, over `pool`, without a gateway or a scheduled run. */
function appOf(pool: Pool) {
  const log = createLogger('silent');
  return { services: createBillingApi(pool, log, { scryptN: 1024, graceDays: 3, live: false, cacheMeters: 0 }), log, metrics: createMetrics(), readiness: [] };
}

const mode = storageModes()[0];
const sha256 = (s: string | Buffer) => createHash('sha256').update(s).digest();

let stack: TestStack;
/** Tokens made in the provisioning tests, used by the later ones. */
const tokens: { reader?: string; customerA?: string; customerAId?: string } = {};

beforeAll(async () => {
  stack = await startTestStack(mode);
});
afterAll(async () => {
  await stack?.close();
});

/** fetch with full control of headers and body (stack.api always sends JSON and a Bearer token). */
async function rawFetch(path: string, init: RequestInit = {}) {
  const res = await fetch(stack.apiUrl + path, init);
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, headers: res.headers, body, text };
}

/** The error shape of contract section 3. */
function expectError(res: { status: number; body: any }, status: number, code?: string) {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.body).toEqual({ error: { code: expect.any(String), message: expect.any(String), details: expect.any(Array) } });
  if (code) expect(res.body.error.code).toBe(code);
}

const detailFields = (res: { body: any }) => (res.body.error.details as { field?: string }[]).map((d) => d.field).sort();

describe(`provisioning (${mode} storage)`, () => {
  it('creates accounts: 201 with the resource, readable afterwards', async () => {
    const res = await stack.api('/v1/accounts', { body: { id: 'ACC-A', name: 'Alice Bakery', timezone: 'Europe/London', billingDay: 1 } });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ id: 'ACC-A', name: 'Alice Bakery', timezone: 'Europe/London', billingDay: 1 });
    expect(Date.parse(res.body.createdAt)).not.toBeNaN();
    const b = await stack.api('/v1/accounts', { body: { id: 'ACC-B', name: 'Bob Garage', timezone: 'America/New_York', billingDay: 15 } });
    expect(b.status).toBe(201);
    const got = await stack.api('/v1/accounts/ACC-A');
    expect(got.status).toBe(200);
    expect(got.body).toEqual(res.body);
  });

  it('creates a meter with a generated MQTT password, returned once and stored hashed', async () => {
    const res = await stack.api('/v1/meters', { body: { id: 'MTR-A1', accountId: 'ACC-A', timezone: 'Europe/London', intervalSeconds: 900, maxPowerKw: 12.5 } });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ id: 'MTR-A1', accountId: 'ACC-A', timezone: 'Europe/London', intervalSeconds: 900, tariffId: null, concentratorIds: [] });
    expect(Number(res.body.maxPowerKw)).toBe(12.5);
    const password = res.body.mqttPassword;
    expect(typeof password).toBe('string');
    expect(password.length).toBeGreaterThanOrEqual(16);

    // Not shown again.
    const got = await stack.api('/v1/meters/MTR-A1');
    expect(got.status).toBe(200);
    expect(got.body).not.toHaveProperty('mqttPassword');
    expect(got.body.id).toBe('MTR-A1');
    const list = await stack.api('/v1/meters?accountId=ACC-A');
    expect(JSON.stringify(list.body)).not.toContain(password);

    // Stored hashed, not in clear.
    const stored = await stack.pool.query('SELECT secret_hash FROM devices WHERE id = $1', ['MTR-A1']);
    expect(stored.rows[0].secret_hash).not.toContain(password);

    // And it is the meter's real secret.
    const client = await connectDevice(stack.mqttUrl, 'MTR-A1', password);
    await endClient(client);
  });

  it('creates a meter with a chosen MQTT password without echoing it', async () => {
    const res = await stack.api('/v1/meters', { body: { id: 'MTR-A2', accountId: 'ACC-A', timezone: 'Europe/London', intervalSeconds: 3600, mqttPassword: 'chosen-secret-123' } });
    expect(res.status).toBe(201);
    expect(res.body).not.toHaveProperty('mqttPassword');
    expect(res.body).toMatchObject({ id: 'MTR-A2', intervalSeconds: 3600, maxPowerKw: null });
    const b = await stack.api('/v1/meters', { body: { id: 'MTR-B1', accountId: 'ACC-B', timezone: 'America/New_York', intervalSeconds: 900 } });
    expect(b.status).toBe(201);
  });

  it('creates a concentrator: 201 with its meters and a generated password shown once', async () => {
    const res = await stack.api('/v1/concentrators', { body: { id: 'DCU-1', meterIds: ['MTR-A2', 'MTR-A1'] } });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ id: 'DCU-1' });
    expect([...res.body.meterIds].sort()).toEqual(['MTR-A1', 'MTR-A2']);
    expect(typeof res.body.mqttPassword).toBe('string');
    const got = await stack.api('/v1/concentrators/DCU-1');
    expect(got.status).toBe(200);
    expect(got.body).not.toHaveProperty('mqttPassword');
    expect((await stack.api('/v1/meters/MTR-A1')).body.concentratorIds).toEqual(['DCU-1']);
  });

  it('creates reader and customer tokens: 201 with the token shown once, stored hashed', async () => {
    const reader = await stack.api('/v1/tokens', { body: { role: 'reader' } });
    expect(reader.status).toBe(201);
    expect(reader.body).toEqual({ id: expect.any(String), token: expect.any(String), role: 'reader' });
    const customer = await stack.api('/v1/tokens', { body: { role: 'customer', accountId: 'ACC-A' } });
    expect(customer.status).toBe(201);
    expect(customer.body).toEqual({ id: expect.any(String), token: expect.any(String), role: 'customer', accountId: 'ACC-A' });
    expect(customer.body.token).not.toBe(reader.body.token);
    tokens.reader = reader.body.token;
    tokens.customerA = customer.body.token;
    tokens.customerAId = customer.body.id;

    const row = await stack.pool.query('SELECT token_hash, role, account_id FROM api_tokens WHERE id = $1', [customer.body.id]);
    expect(row.rows[0]).toMatchObject({ role: 'customer', account_id: 'ACC-A' });
    // Keyed: the stored value is the installation's digest of the token, never its plain SHA-256.
    expect(Buffer.compare(row.rows[0].token_hash, (await tokenDigester(stack.pool))(customer.body.token))).toBe(0);
    expect(Buffer.compare(row.rows[0].token_hash, sha256(customer.body.token))).not.toBe(0);
    const clear = await stack.pool.query(`SELECT count(*)::int AS n FROM api_tokens WHERE position($1::bytea IN token_hash) > 0`, [Buffer.from(customer.body.token)]);
    expect(clear.rows[0].n).toBe(0);
  });

  it('refuses a customer token without an account and a reader token with one, listing the problem', async () => {
    const res = await stack.api('/v1/tokens', { body: { role: 'customer' } });
    expectError(res, 400);
    expect(detailFields(res)).toEqual(['body.accountId']);
    const res2 = await stack.api('/v1/tokens', { body: { role: 'reader', accountId: 'ACC-A' } });
    expectError(res2, 400);
    const admin = await stack.api('/v1/tokens', { body: { role: 'admin' } });
    expectError(admin, 400);
    expect(detailFields(admin)).toEqual(['body.role']);
  });

  it('answers 409 on duplicate ids, including a meter id equal to a concentrator id and vice versa', async () => {
    expectError(await stack.api('/v1/accounts', { body: { id: 'ACC-A', name: 'Again', timezone: 'Europe/London', billingDay: 1 } }), 409, 'conflict');
    expectError(await stack.api('/v1/meters', { body: { id: 'MTR-A1', accountId: 'ACC-B', timezone: 'Europe/London', intervalSeconds: 900 } }), 409, 'conflict');
    expectError(await stack.api('/v1/meters', { body: { id: 'DCU-1', accountId: 'ACC-A', timezone: 'Europe/London', intervalSeconds: 900 } }), 409, 'conflict');
    expectError(await stack.api('/v1/concentrators', { body: { id: 'MTR-A1', meterIds: [] } }), 409, 'conflict');
    expectError(await stack.api('/v1/concentrators', { body: { id: 'DCU-1', meterIds: ['MTR-A1'] } }), 409, 'conflict');
    // Nothing was changed by the refused requests.
    expect((await stack.api('/v1/meters/MTR-A1')).body.accountId).toBe('ACC-A');
    expect((await stack.pool.query(`SELECT kind FROM devices WHERE id IN ('MTR-A1', 'DCU-1') ORDER BY id`)).rows.map((r) => r.kind)).toEqual(['concentrator', 'meter']);
  });

  it('answers 400 listing EVERY problem of a bad meter body, each with its field', async () => {
    const res = await stack.api('/v1/meters', {
      body: { id: 'bad id!', accountId: 'ACC-A', timezone: 'Mars/Olympus_Mons', intervalSeconds: 700, colour: 'red' },
    });
    expectError(res, 400, 'invalid_request');
    expect(res.body.error.details).toHaveLength(4);
    expect(detailFields(res)).toEqual(['body.colour', 'body.id', 'body.intervalSeconds', 'body.timezone']);
    for (const d of res.body.error.details) expect(d.message.length).toBeGreaterThan(0);
    expect((await stack.api('/v1/meters/bad%20id!')).status).toBe(404);
  });

  it('answers 400 listing every missing field of an empty body', async () => {
    const meter = await stack.api('/v1/meters', { body: {} });
    expectError(meter, 400);
    expect(detailFields(meter)).toEqual(['body.accountId', 'body.id', 'body.intervalSeconds', 'body.timezone']);
    const account = await stack.api('/v1/accounts', { body: { id: 'ACC-X', name: '', timezone: 'Europe/London', billingDay: 32 } });
    expectError(account, 400);
    expect(detailFields(account)).toEqual(['body.billingDay', 'body.name']);
    expect((await stack.api('/v1/accounts/ACC-X')).status).toBe(404);
  });

  it('answers 400 for a body that is not JSON, in the error format', async () => {
    const res = await rawFetch('/v1/accounts', { method: 'POST', headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: '{"id": "ACC-Z",' });
    expectError(res, 400);
  });

  it('answers 400 for references to unknown accounts, tariffs and meters', async () => {
    const meter = await stack.api('/v1/meters', { body: { id: 'MTR-ORPHAN', accountId: 'ACC-NOPE', timezone: 'Europe/London', intervalSeconds: 900, tariffId: 'TARIFF-NOPE' } });
    expectError(meter, 400);
    expect(detailFields(meter)).toEqual(['body.accountId', 'body.tariffId']);
    expect((await stack.api('/v1/meters/MTR-ORPHAN')).status).toBe(404);

    const dcu = await stack.api('/v1/concentrators', { body: { id: 'DCU-ORPHAN', meterIds: ['MTR-A1', 'MTR-NOPE-1', 'MTR-NOPE-2'] } });
    expectError(dcu, 400);
    expect(dcu.body.error.details).toHaveLength(2);
    expect(dcu.body.error.details.map((d: { message: string }) => d.message).join(' ')).toMatch(/MTR-NOPE-1.*MTR-NOPE-2|MTR-NOPE-2.*MTR-NOPE-1/);
    expect((await stack.api('/v1/concentrators/DCU-ORPHAN')).status).toBe(404);

    const token = await stack.api('/v1/tokens', { body: { role: 'customer', accountId: 'ACC-NOPE' } });
    expectError(token, 400);
    expect(detailFields(token)).toEqual(['body.accountId']);
  });

  it('lists accounts with paging', async () => {
    const seen: string[] = [];
    let path: string | null = '/v1/accounts?limit=1';
    for (let pages = 0; path && pages < 10; pages++) {
      const res: { status: number; body: any } = await stack.api(path);
      expect(res.status).toBe(200);
      expect(res.body.items.length).toBeLessThanOrEqual(1);
      seen.push(...res.body.items.map((a: { id: string }) => a.id));
      path = res.body.next;
    }
    expect(path).toBeNull();
    expect(seen).toEqual(['ACC-A', 'ACC-B']);
  });
});

describe('auth', () => {
  it('answers 401 without a token, with an unknown token and with a malformed header', async () => {
    expectError(await stack.api('/v1/accounts', { token: null }), 401, 'unauthorized');
    expectError(await stack.api('/v1/accounts', { token: 'smbg_not-a-real-token' }), 401, 'unauthorized');
    for (const header of ['Basic dXNlcjpwYXNz', 'Bearer', 'Bearer ', `Bearer ${TEST_ADMIN_TOKEN} extra`, TEST_ADMIN_TOKEN, `Token ${TEST_ADMIN_TOKEN}`]) {
      expectError(await rawFetch('/v1/accounts', { headers: { authorization: header } }), 401, 'unauthorized');
    }
    // A POST without a token creates nothing.
    expectError(await rawFetch('/v1/accounts', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'ACC-ANON', name: 'x', timezone: 'Europe/London', billingDay: 1 }) }), 401);
    expect((await stack.api('/v1/accounts/ACC-ANON')).status).toBe(404);
  });

  it('lets a reader read everything and change nothing (403)', async () => {
    const token = tokens.reader!;
    expect((await stack.api('/v1/accounts', { token })).status).toBe(200);
    expect((await stack.api('/v1/accounts/ACC-B', { token })).status).toBe(200);
    expect((await stack.api('/v1/meters/MTR-B1', { token })).status).toBe(200);
    expect((await stack.api('/v1/quarantine', { token })).status).toBe(200);
    expectError(await stack.api('/v1/accounts', { token, body: { id: 'ACC-R', name: 'Reader made', timezone: 'Europe/London', billingDay: 1 } }), 403, 'forbidden');
    expectError(await stack.api('/v1/meters', { token, body: { id: 'MTR-R', accountId: 'ACC-A', timezone: 'Europe/London', intervalSeconds: 900 } }), 403, 'forbidden');
    expectError(await stack.api('/v1/tokens', { token, body: { role: 'reader' } }), 403, 'forbidden');
    expectError(await stack.api(`/v1/tokens/${tokens.customerAId}`, { token, method: 'DELETE' }), 403, 'forbidden');
    expect((await stack.api('/v1/accounts/ACC-R')).status).toBe(404);
    expect((await stack.api('/v1/meters/MTR-R')).status).toBe(404);
  });

  it('refuses a customer the back-office lists and every write (403)', async () => {
    const token = tokens.customerA!;
    expectError(await stack.api('/v1/quarantine', { token }), 403, 'forbidden');
    expectError(await stack.api('/v1/accounts', { token }), 403, 'forbidden');
    expectError(await stack.api('/v1/meters', { token, body: { id: 'MTR-C', accountId: 'ACC-A', timezone: 'Europe/London', intervalSeconds: 900 } }), 403, 'forbidden');
    expectError(await stack.api('/v1/tokens', { token, body: { role: 'customer', accountId: 'ACC-B' } }), 403, 'forbidden');
  });

  it('scopes a customer token to its account: its own data 200, any other account 404 like a missing one', async () => {
    const token = tokens.customerA!;
    const own = await stack.api('/v1/accounts/ACC-A', { token });
    expect(own.status).toBe(200);
    expect(own.body.id).toBe('ACC-A');
    expect((await stack.api('/v1/meters/MTR-A1', { token })).status).toBe(200);
    expect((await stack.api('/v1/meters/MTR-A1/readings', { token })).status).toBe(200);

    // Another account's resources look exactly like resources that do not exist.
    const pairs: [string, string][] = [
      ['/v1/accounts/ACC-B', '/v1/accounts/ACC-NOPE'],
      ['/v1/meters/MTR-B1', '/v1/meters/MTR-NOPE'],
      ['/v1/meters/MTR-B1/readings', '/v1/meters/MTR-NOPE/readings'],
    ];
    for (const [other, missing] of pairs) {
      const a = await stack.api(other, { token });
      const b = await stack.api(missing, { token });
      expectError(a, 404, 'not_found');
      expectError(b, 404, 'not_found');
      expect(a.body.error.message.replace(/"[^"]*"/g, '"x"')).toBe(b.body.error.message.replace(/"[^"]*"/g, '"x"'));
    }
  });

  it("restricts a customer's meter list to its account, whatever accountId it asks for", async () => {
    const token = tokens.customerA!;
    const mine = await stack.api('/v1/meters', { token });
    expect(mine.status).toBe(200);
    expect(mine.body.items.map((m: { id: string }) => m.id).sort()).toEqual(['MTR-A1', 'MTR-A2']);
    const other = await stack.api('/v1/meters?accountId=ACC-B', { token });
    expect(other.body.items.every((m: { accountId: string }) => m.accountId === 'ACC-A')).toBe(true);
    expect(other.body.items.map((m: { id: string }) => m.id)).not.toContain('MTR-B1');
    // The admin sees both accounts' meters.
    const all = await stack.api('/v1/meters');
    expect(all.body.items.map((m: { id: string }) => m.id).sort()).toEqual(['MTR-A1', 'MTR-A2', 'MTR-B1']);
  });

  it('revokes a token: DELETE /v1/tokens/:id answers 204, then the token is refused with 401', async () => {
    const made = await stack.api('/v1/tokens', { body: { role: 'reader' } });
    expect((await stack.api('/v1/accounts', { token: made.body.token })).status).toBe(200);
    const del = await stack.api(`/v1/tokens/${made.body.id}`, { method: 'DELETE' });
    expect(del.status).toBe(204);
    expectError(await stack.api('/v1/accounts', { token: made.body.token }), 401, 'unauthorized');
    expectError(await stack.api(`/v1/tokens/${made.body.id}`, { method: 'DELETE' }), 404);
    expectError(await stack.api('/v1/tokens/tok_does_not_exist', { method: 'DELETE' }), 404);
    // Other tokens are unaffected.
    expect((await stack.api('/v1/accounts', { token: tokens.reader })).status).toBe(200);
  });
});

// ---------------------------------------------------------------------------------------------------

const BASE_MS = Date.parse('2026-03-08T00:00:00Z');
const slotIso = (k: number, seconds = 900) => new Date(BASE_MS + k * seconds * 1000).toISOString();
/** Stored mWh -> the exact Wh decimal string the API must answer (written out, not computed). */
const ENERGY: [bigint, string][] = [
  [0n, '0'],
  [1n, '0.001'],
  [10n, '0.01'],
  [250500n, '250.5'],
  [1000n, '1'],
  [123456789012n, '123456789.012'],
  // beyond 2^53: a float would round it
  [9007199254740993n, '9007199254740.993'],
];

describe('GET /v1/meters/:id/readings', () => {
  const N = 30;
  /** what was inserted for MTR-A1, in intervalStart order */
  const inserted: { intervalStart: string; importWh: string; exportWh: string; quality: string }[] = [];

  beforeAll(async () => {
    // Insert out of order, plus another meter's readings at the same instants, which must never appear.
    const order = Array.from({ length: N }, (_, k) => (k * 7) % N);
    for (const k of order) {
      const [imp] = ENERGY[k % ENERGY.length];
      const [exp] = ENERGY[(k + 3) % ENERGY.length];
      const quality = k % 5 === 4 ? 'estimated' : 'actual';
      await stack.pool.query(
        `INSERT INTO readings (meter_id, interval_start, interval_seconds, import_mwh, export_mwh, quality) VALUES ($1, $2, 900, $3, $4, $5)`,
        ['MTR-A1', slotIso(k), imp.toString(), exp.toString(), quality],
      );
      await stack.pool.query(
        `INSERT INTO readings (meter_id, interval_start, interval_seconds, import_mwh, export_mwh, quality) VALUES ('MTR-B1', $1, 900, 777, 0, 'actual')`,
        [slotIso(k)],
      );
    }
    for (let k = 0; k < N; k++) {
      inserted.push({
        intervalStart: slotIso(k),
        importWh: ENERGY[k % ENERGY.length][1],
        exportWh: ENERGY[(k + 3) % ENERGY.length][1],
        quality: k % 5 === 4 ? 'estimated' : 'actual',
      });
    }
  });

  /** Follows `next` from `path` until null; returns every item and the page sizes. */
  async function followPages(path: string, token?: string) {
    const items: any[] = [];
    const sizes: number[] = [];
    let next: string | null = path;
    for (let guard = 0; next; guard++) {
      expect(guard).toBeLessThan(100);
      const res: { status: number; body: any } = await stack.api(next, { token });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(Object.keys(res.body).sort()).toEqual(['items', 'next']);
      items.push(...res.body.items);
      sizes.push(res.body.items.length);
      next = res.body.next;
    }
    return { items, sizes };
  }

  const view = (r: any) => ({ intervalStart: new Date(r.intervalStart).toISOString(), importWh: r.importWh, exportWh: r.exportWh, quality: r.quality });

  it('lists the stored intervals with the fields of the MQTT reading, energy as exact decimal strings, times in UTC with Z', async () => {
    const res = await stack.api('/v1/meters/MTR-A1/readings');
    expect(res.status).toBe(200);
    expect(res.body.next).toBeNull();
    expect(res.body.items).toHaveLength(N);
    for (const item of res.body.items) {
      expect(item).toMatchObject({ intervalStart: expect.stringMatching(/Z$/), intervalSeconds: 900, importWh: expect.any(String), exportWh: expect.any(String), quality: expect.stringMatching(/^(actual|estimated)$/) });
    }
    expect(res.body.items.map(view)).toEqual(inserted);
  });

  it('pages with limit and next: all items once, in intervalStart order', async () => {
    const { items, sizes } = await followPages('/v1/meters/MTR-A1/readings?limit=7');
    expect(sizes.slice(0, 4)).toEqual([7, 7, 7, 7]);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(N);
    const starts = items.map((r) => Date.parse(r.intervalStart));
    expect(new Set(starts).size).toBe(N);
    expect([...starts].sort((a, b) => a - b)).toEqual(starts);
    expect(items.map(view)).toEqual(inserted);
  });

  it('pages through an exact multiple of the limit and ends with next = null', async () => {
    const { items } = await followPages('/v1/meters/MTR-A1/readings?limit=10');
    expect(items.map(view)).toEqual(inserted);
  });

  it('uses the half-open window [from, to) on intervalStart, also across pages, with offsets in the input', async () => {
    // from = slot 3 exactly (included), to = slot 20 exactly (excluded); "from" written with a +01:00 offset.
    const from = encodeURIComponent('2026-03-08T01:45:00+01:00');
    const to = encodeURIComponent(slotIso(20));
    const { items } = await followPages(`/v1/meters/MTR-A1/readings?from=${from}&to=${to}&limit=4`);
    expect(items.map(view)).toEqual(inserted.slice(3, 20));
    // A window between two interval starts includes the later one only.
    const between = await stack.api(`/v1/meters/MTR-A1/readings?from=${encodeURIComponent('2026-03-08T00:10:00Z')}&to=${encodeURIComponent('2026-03-08T00:40:00Z')}`);
    expect(between.body.items.map(view)).toEqual(inserted.slice(1, 3));
    // An empty window.
    const empty = await stack.api(`/v1/meters/MTR-A1/readings?from=${encodeURIComponent(slotIso(5))}&to=${encodeURIComponent(slotIso(5))}`);
    expect(empty.body).toEqual({ items: [], next: null });
  });

  it('pages with the default limit of 1000', async () => {
    await stack.pool.query(
      `INSERT INTO readings (meter_id, interval_start, interval_seconds, import_mwh, export_mwh, quality)
       SELECT 'MTR-A2', timestamptz '2025-01-01T00:00:00Z' + g * interval '1 hour', 3600, g, 0, 'actual' FROM generate_series(0, 1000) AS g`,
    );
    const first = await stack.api('/v1/meters/MTR-A2/readings');
    expect(first.body.items).toHaveLength(1000);
    expect(first.body.next).toEqual(expect.any(String));
    const second = await stack.api(first.body.next);
    expect(second.body.items).toHaveLength(1);
    expect(second.body.next).toBeNull();
    expect(second.body.items[0]).toMatchObject({ importWh: '1', intervalSeconds: 3600 });
    expect(new Date(second.body.items[0].intervalStart).toISOString()).toBe(new Date(Date.parse('2025-01-01T00:00:00Z') + 1000 * 3600_000).toISOString());
  });

  it('answers 400 for bad query parameters, listing each, and 404 for an unknown meter', async () => {
    const bad = await stack.api(`/v1/meters/MTR-A1/readings?from=2026-03-08T00:00:00&limit=0`);
    expectError(bad, 400);
    expect(detailFields(bad)).toEqual(['querystring.from', 'querystring.limit']);
    expectError(await stack.api('/v1/meters/MTR-A1/readings?limit=10001'), 400);
    expectError(await stack.api('/v1/meters/MTR-A1/readings?colour=red'), 400);
    expect((await stack.api('/v1/meters/MTR-A1/readings?limit=10000')).status).toBe(200);
    expectError(await stack.api('/v1/meters/MTR-NOPE/readings'), 404, 'not_found');
  });
});

describe('GET /v1/quarantine', () => {
  const T0 = Date.parse('2026-03-01T12:00:00Z');
  const at = (minutes: number) => new Date(T0 + minutes * 60_000).toISOString();
  const INVALID_UTF8 = Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]); // {"\xff\xfe"}
  /** the quarantine records, in insertion (id) order */
  const records = [
    { device: 'MTR-A1', reason: 'schema', minute: 0, raw: Buffer.from('{"importWh":-1}') },
    { device: 'MTR-A1', reason: 'future', minute: 10, raw: Buffer.from('{"intervalStart":"2099-01-01T00:00:00Z"}') },
    { device: 'DCU-1', reason: 'invalid_json', minute: 20, raw: INVALID_UTF8 },
    { device: 'MTR-A1', reason: 'schema', minute: 30, raw: Buffer.from('{"importWh":"ten"}') },
    { device: 'DCU-1', reason: 'schema', minute: 40, raw: Buffer.from('[1,2,3]') },
    { device: 'MTR-A2', reason: 'misaligned', minute: 50, raw: Buffer.from('{"intervalStart":"2026-03-01T12:07:00Z"}') },
    { device: 'MTR-A1', reason: 'schema', minute: 60, raw: Buffer.from('{"quality":"guess"}') },
  ];
  let ids: number[] = [];

  beforeAll(async () => {
    // Only this suite writes quarantine rows (nothing is published), so the table holds exactly these.
    for (const r of records) {
      const res = await stack.pool.query(
        `INSERT INTO quarantine (received_at, device_id, topic, reason, detail, raw, raw_size, raw_sha256)
         VALUES ($1, $2, $3, $4, 'test', $5, $6, $7) RETURNING id`,
        [at(r.minute), r.device, `meters/${r.device}/readings`, r.reason, r.raw, r.raw.length, sha256(r.raw)],
      );
      ids.push(Number(res.rows[0].id));
    }
  });

  async function followPages(path: string) {
    const items: any[] = [];
    let next: string | null = path;
    for (let guard = 0; next; guard++) {
      expect(guard).toBeLessThan(50);
      const res: { status: number; body: any } = await stack.api(next);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      items.push(...res.body.items);
      next = res.body.next;
    }
    return items;
  }
  const idsOf = (pred: (r: (typeof records)[number]) => boolean) => records.map((r, i) => (pred(r) ? ids[i] : -1)).filter((id) => id >= 0);

  it('lists everything with the raw input as text, or base64 when it is not UTF-8', async () => {
    const res = await stack.api('/v1/quarantine');
    expect(res.status).toBe(200);
    expect(res.body.next).toBeNull();
    expect(res.body.items.map((q: { id: number }) => q.id)).toEqual(ids);
    const text = res.body.items[0];
    expect(text).toMatchObject({ deviceId: 'MTR-A1', reason: 'schema', raw: '{"importWh":-1}', rawSize: 15, rawSha256: sha256('{"importWh":-1}').toString('hex') });
    expect(new Date(text.receivedAt).toISOString()).toBe(at(0));
    expect(text.receivedAt).toMatch(/Z$/);
    const binary = res.body.items[2];
    expect(binary.raw).toBeNull();
    expect(binary.rawBase64).toBe(INVALID_UTF8.toString('base64'));
    expect(Buffer.from(binary.rawBase64, 'base64').equals(INVALID_UTF8)).toBe(true);
  });

  it('filters by deviceId, reason and the half-open window [from, to) on the time received', async () => {
    const byDevice = await stack.api('/v1/quarantine?deviceId=MTR-A1');
    expect(byDevice.body.items.map((q: { id: number }) => q.id)).toEqual(idsOf((r) => r.device === 'MTR-A1'));
    const byReason = await stack.api('/v1/quarantine?reason=schema');
    expect(byReason.body.items.map((q: { id: number }) => q.id)).toEqual(idsOf((r) => r.reason === 'schema'));
    const window = await stack.api(`/v1/quarantine?from=${encodeURIComponent(at(10))}&to=${encodeURIComponent(at(40))}`);
    expect(window.body.items.map((q: { id: number }) => q.id)).toEqual(idsOf((r) => r.minute >= 10 && r.minute < 40));
    const all3 = await stack.api(`/v1/quarantine?deviceId=MTR-A1&reason=schema&from=${encodeURIComponent('2026-03-01T13:00:00+01:00')}&to=${encodeURIComponent(at(60))}`);
    expect(all3.body.items.map((q: { id: number }) => q.id)).toEqual(idsOf((r) => r.device === 'MTR-A1' && r.reason === 'schema' && r.minute >= 0 && r.minute < 60));
    const none = await stack.api('/v1/quarantine?deviceId=NOBODY');
    expect(none.body).toEqual({ items: [], next: null });
  });

  it('pages with limit and next, keeping the filters', async () => {
    const all = await followPages('/v1/quarantine?limit=2');
    expect(all.map((q) => q.id)).toEqual(ids);
    const filtered = await followPages('/v1/quarantine?reason=schema&limit=1');
    expect(filtered.map((q) => q.id)).toEqual(idsOf((r) => r.reason === 'schema'));
    const windowed = await followPages(`/v1/quarantine?from=${encodeURIComponent(at(20))}&limit=2`);
    expect(windowed.map((q) => q.id)).toEqual(idsOf((r) => r.minute >= 20));
  });

  it('answers 400 for a bad window bound', async () => {
    const res = await stack.api('/v1/quarantine?from=yesterday');
    expectError(res, 400);
    expect(detailFields(res)).toEqual(['querystring.from']);
  });
});

describe('operations endpoints', () => {
  it('/healthz answers 200 without a token', async () => {
    const res = await stack.api('/healthz', { token: null });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('/readyz answers 200 with every check passing (database, migrations, broker)', async () => {
    const res = await stack.api('/readyz', { token: null });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ready', checks: { database: true, migrations: true, broker: true, ingestion: true } });
  });

  it('/metrics serves Prometheus text with ingestion and HTTP metrics to a staff token, and nothing without one', async () => {
    await stack.api('/v1/accounts/ACC-A');
    expectError(await rawFetch('/metrics'), 401, 'unauthorized');
    expectError(await rawFetch('/metrics', { headers: { authorization: `Bearer ${tokens.customerA}` } }), 403, 'forbidden');
    expect((await rawFetch('/metrics', { headers: { authorization: `Bearer ${tokens.reader}` } })).status).toBe(200);
    const res = await rawFetch('/metrics', { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(res.text).toMatch(/^# TYPE readings_ingested_total counter$/m);
    expect(res.text).toMatch(/^readings_ingested_total \d+/m);
    expect(res.text).toMatch(/^# TYPE http_request_duration_seconds histogram$/m);
    expect(res.text).toMatch(/^http_request_duration_seconds_count\{[^}]*route="\/v1\/accounts\/:id"[^}]*\} \d+/m);
  });

  it('/openapi.json is an OpenAPI 3 document with the /v1/meters path and its request body schema', async () => {
    const res = await rawFetch('/openapi.json');
    expect(res.status).toBe(200);
    const doc = res.body;
    expect(doc.openapi).toMatch(/^3\./);
    const post = doc.paths['/v1/meters']?.post;
    expect(post).toBeDefined();
    const schema = post.requestBody.content['application/json'].schema;
    expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(['id', 'accountId', 'timezone', 'intervalSeconds', 'tariffId', 'maxPowerKw', 'mqttPassword']));
    expect([...schema.required].sort()).toEqual(['accountId', 'id', 'intervalSeconds', 'timezone']);
    for (const path of ['/v1/accounts', '/v1/concentrators', '/v1/tokens', '/v1/meters/{id}/readings', '/v1/quarantine']) expect(Object.keys(doc.paths)).toContain(path);
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
  });

  it('/docs serves the HTML documentation without a token', async () => {
    const res = await rawFetch('/docs');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(res.text).toMatch(/<html/i);
    // ... and the assets the page loads.
    const assets = [...res.text.matchAll(/(?:src|href)="(\/docs\/[^"]+\.(?:js|css))"/g)].map((m) => m[1]);
    expect(assets.length).toBeGreaterThan(0);
    for (const asset of assets) expect((await rawFetch(asset)).status, asset).toBe(200);
  });

  it('/readyz answers 503 and names the failing check when one fails or throws', async () => {
    const log = createLogger('silent');
    const app = await buildApp({
      services: createBillingApi(stack.pool, log, { scryptN: 1024, graceDays: 3, live: false, cacheMeters: 0 }),
      log,
      metrics: createMetrics(),
      readiness: [
        { name: 'database', check: async () => true },
        { name: 'migrations', check: async () => false },
        { name: 'broker', check: async () => { throw new Error('down'); } },
      ],
    });
    try {
      const res = await app.inject({ method: 'GET', url: '/readyz' });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toEqual({ status: 'not_ready', checks: { database: true, migrations: false, broker: false } });
    } finally {
      await app.close();
    }
  });

  it('answers an unknown route with 404 in the error format', async () => {
    expectError(await stack.api('/v1/nothing-here'), 404, 'not_found');
  });
});

describe('bootstrap admin token', () => {
  it('BILLING_ADMIN_TOKEN is an admin token, stored hashed', async () => {
    expect((await stack.api('/v1/accounts', { token: TEST_ADMIN_TOKEN })).status).toBe(200);
    const row = await stack.pool.query('SELECT token_hash, role, revoked_at FROM api_tokens WHERE id = $1', [BOOTSTRAP_TOKEN_ID]);
    expect(row.rows[0].role).toBe('admin');
    expect(row.rows[0].revoked_at).toBeNull();
    expect(Buffer.compare(row.rows[0].token_hash, (await tokenDigester(stack.pool))(TEST_ADMIN_TOKEN))).toBe(0);
    expect(Buffer.compare(row.rows[0].token_hash, sha256(TEST_ADMIN_TOKEN))).not.toBe(0);
  });

  describe('ensureAdminToken against a fresh database', () => {
    let db: TestDatabase;
    beforeAll(async () => {
      db = await createTestDatabase(mode, 'admintoken');
    });
    afterAll(async () => {
      await db?.drop();
    });

    it('without BILLING_ADMIN_TOKEN generates a token once, which works; later starts generate nothing', async () => {
      const first = await ensureAdminToken(db.pool, undefined);
      expect(first.generated).toEqual(expect.any(String));
      expect(first.generated!.length).toBeGreaterThanOrEqual(32);
      const second = await ensureAdminToken(db.pool, undefined);
      expect(second.generated).toBeNull();
      const rows = await db.pool.query('SELECT id, role, token_hash FROM api_tokens');
      expect(rows.rows).toHaveLength(1);
      expect(rows.rows[0]).toMatchObject({ id: BOOTSTRAP_TOKEN_ID, role: 'admin' });
      expect(Buffer.compare(rows.rows[0].token_hash, (await tokenDigester(db.pool))(first.generated!))).toBe(0);

      // The generated token authenticates as admin in the application production runs.
      const app = await buildApp(appOf(db.pool));
      try {
        const ok = await app.inject({ method: 'POST', url: '/v1/tokens', headers: { authorization: `Bearer ${first.generated}` }, payload: { role: 'reader' } });
        expect(ok.statusCode).toBe(201);
        const refused = await app.inject({ method: 'GET', url: '/v1/accounts', headers: { authorization: 'Bearer smbg_guess' } });
        expect(refused.statusCode).toBe(401);
      } finally {
        await app.close();
      }
    });

    it('two processes starting at once generate (and print) only one token', async () => {
      const other = await createTestDatabase('plain', 'admintoken2');
      try {
        const results = await Promise.all([ensureAdminToken(other.pool, undefined), ensureAdminToken(other.pool, undefined), ensureAdminToken(other.pool, undefined)]);
        expect(results.filter((r) => r.generated !== null)).toHaveLength(1);
      } finally {
        await other.drop();
      }
    });

    it('BILLING_ADMIN_TOKEN replaces the bootstrap token; the previous one stops working', async () => {
      await ensureAdminToken(db.pool, 'operator-chosen-admin-token-1');
      expect((await ensureAdminToken(db.pool, 'operator-chosen-admin-token-2')).generated).toBeNull();
      const rows = await db.pool.query('SELECT token_hash FROM api_tokens WHERE id = $1', [BOOTSTRAP_TOKEN_ID]);
      expect(Buffer.compare(rows.rows[0].token_hash, (await tokenDigester(db.pool))('operator-chosen-admin-token-2'))).toBe(0);
      const app = await buildApp(appOf(db.pool));
      try {
        const get = (token: string) => app.inject({ method: 'GET', url: '/v1/accounts', headers: { authorization: `Bearer ${token}` } });
        expect((await get('operator-chosen-admin-token-2')).statusCode).toBe(200);
        expect((await get('operator-chosen-admin-token-1')).statusCode).toBe(401);
      } finally {
        await app.close();
      }
    });
  });
});
