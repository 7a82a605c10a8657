/**
 * Finding silent meters through the public HTTP API against the real stack: each meter's latest stored
 * interval and last contact in GET /v1/meters, filters by account, concentrator and silence, the staleness
 * order paged by the contract's next links; lists of concentrators and tokens (never their secrets).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageModes } from '../../test/support/database.js';
import { startTestStack, type TestStack } from '../../test/support/stack.js';
import { connectDevice, endClient } from '../../test/support/mqtt.js';
import { createAccount, createMeter, createTariff, flatTariff, insertReadings } from '../test-support.js';

const mode = storageModes()[0];
let stack: TestStack;

const QUARTER = 900_000;
/** The start of the current quarter hour: readings below are placed relative to it. */
const t0 = Math.floor(Date.now() / QUARTER) * QUARTER;
const iso = (ms: number) => new Date(ms).toISOString();
const secrets: Record<string, string> = {};

beforeAll(async () => {
  stack = await startTestStack(mode);
  await createTariff(stack, flatTariff('flat-sil', { timeZone: 'UTC', rate: '0.10' }));
  await createAccount(stack, 'ACC-Z', 'UTC', 1);
  await createAccount(stack, 'ACC-Y', 'UTC', 1);
  for (const id of ['SIL-1', 'SIL-2', 'SIL-3']) secrets[id] = await createMeter(stack, id, 'ACC-Z', 'UTC', 'flat-sil');
  secrets['SIL-4'] = await createMeter(stack, 'SIL-4', 'ACC-Y', 'UTC', 'flat-sil');
  expect((await stack.api('/v1/concentrators', { body: { id: 'CON-Z', meterIds: ['SIL-1', 'SIL-2', 'SIL-3'] } })).status).toBe(201);
  expect((await stack.api('/v1/concentrators', { body: { id: 'CON-Y', meterIds: ['SIL-4'] } })).status).toBe(201);
  // SIL-1 reported up to the current quarter hour, SIL-2 until three hours ago, SIL-4 until two days ago;
  // SIL-3 never stored a reading, but sent something the gateway quarantined.
  await insertReadings(stack, 'SIL-1', iso(t0 - 4 * QUARTER), 4, 1000);
  await insertReadings(stack, 'SIL-2', iso(t0 - 3 * 3_600_000 - 4 * QUARTER), 4, 1000);
  await insertReadings(stack, 'SIL-4', iso(t0 - 2 * 86_400_000 - 4 * QUARTER), 4, 1000);
  await stack.pool.query(
    `INSERT INTO quarantine (device_id, topic, reason, raw, raw_size, raw_sha256) VALUES ('SIL-3', 'meters/SIL-3/readings', 'schema', '\\x7b7d'::bytea, 2, sha256('\\x7b7d'::bytea))`,
  );
});
afterAll(async () => {
  await stack?.close();
});

const ids = (res: { body: any }) => res.body.items.map((m: { id: string }) => m.id);

describe(`silent meters (${mode} storage)`, () => {
  it('shows each meter\'s latest stored interval, when it was committed, and the last contact', async () => {
    const res = await stack.api('/v1/meters');
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const byId = Object.fromEntries(res.body.items.map((m: any) => [m.id, m]));
    expect(byId['SIL-1'].lastIntervalStart).toBe(iso(t0 - QUARTER));
    expect(byId['SIL-2'].lastIntervalStart).toBe(iso(t0 - 3 * 3_600_000 - QUARTER));
    expect(byId['SIL-4'].lastIntervalStart).toBe(iso(t0 - 2 * 86_400_000 - QUARTER));
    for (const id of ['SIL-1', 'SIL-2', 'SIL-4']) {
      expect(Math.abs(Date.parse(byId[id].lastReceivedAt) - Date.now())).toBeLessThan(120_000);
      expect(byId[id].lastSeenAt).toBe(byId[id].lastReceivedAt);
    }
    expect(byId['SIL-3']).toMatchObject({ lastIntervalStart: null, lastReceivedAt: null });
    expect(Math.abs(Date.parse(byId['SIL-3'].lastSeenAt) - Date.now())).toBeLessThan(120_000);
    const one = await stack.api('/v1/meters/SIL-2');
    expect(one.body).toEqual(byId['SIL-2']);
  });

  it('records when a meter last connected to the gateway and disconnected', async () => {
    const before = Date.now();
    const client = await connectDevice(stack.mqttUrl, 'SIL-2', secrets['SIL-2']);
    await endClient(client);
    let meter: any = null;
    for (let i = 0; i < 100 && !meter?.lastDisconnectedAt; i++) {
      await new Promise((r) => setTimeout(r, 100));
      meter = (await stack.api('/v1/meters/SIL-2')).body;
    }
    expect(Date.parse(meter.lastConnectedAt)).toBeGreaterThanOrEqual(before - 1000);
    expect(Date.parse(meter.lastDisconnectedAt)).toBeGreaterThanOrEqual(Date.parse(meter.lastConnectedAt));
    // lastSeenAt is the latest contact: the disconnection, or the commit of a reading (stored to the second, rounded up).
    expect(Date.parse(meter.lastSeenAt)).toBe(Math.max(Date.parse(meter.lastDisconnectedAt), Date.parse(meter.lastReceivedAt)));
    // Connecting without sending data does not make a meter less silent: silence is about stored intervals.
    expect(meter.lastIntervalStart).toBe(iso(t0 - 3 * 3_600_000 - QUARTER));
    expect((await stack.api('/v1/meters/SIL-1')).body.lastConnectedAt).toBeNull();
  });

  it('finds the meters silent for more than N minutes, stalest first, never-reported first', async () => {
    const silent = await stack.api('/v1/meters?silentForMinutes=60&sort=staleness');
    expect(silent.status).toBe(200);
    expect(ids(silent)).toEqual(['SIL-3', 'SIL-4', 'SIL-2']);
    expect(ids(await stack.api('/v1/meters?silentForMinutes=3000&sort=staleness'))).toEqual(['SIL-3']);
    expect(ids(await stack.api('/v1/meters?silentForMinutes=60&concentratorId=CON-Z'))).toEqual(['SIL-2', 'SIL-3']);
    expect(ids(await stack.api('/v1/meters?silentForMinutes=60&accountId=ACC-Y'))).toEqual(['SIL-4']);
    expect(ids(await stack.api('/v1/meters?concentratorId=CON-Y'))).toEqual(['SIL-4']);
    expect(ids(await stack.api('/v1/meters?silentForMinutes=0&sort=staleness'))).toEqual(['SIL-3', 'SIL-4', 'SIL-2', 'SIL-1']);
  });

  it('pages the staleness order with the contract\'s next links, each meter once', async () => {
    const seen: string[] = [];
    let next: string | null = '/v1/meters?sort=staleness&limit=1';
    while (next) {
      const page: { status: number; body: any } = await stack.api(next);
      expect(page.status, JSON.stringify(page.body)).toBe(200);
      expect(page.body.items.length).toBeLessThanOrEqual(1);
      seen.push(...ids(page));
      next = page.body.next;
    }
    expect(seen).toEqual(['SIL-3', 'SIL-4', 'SIL-2', 'SIL-1']);
    const byId: string[] = [];
    next = '/v1/meters?limit=3';
    while (next) {
      const page: { status: number; body: any } = await stack.api(next);
      byId.push(...ids(page));
      next = page.body.next;
    }
    expect(byId).toEqual(['SIL-1', 'SIL-2', 'SIL-3', 'SIL-4']);
    const bad = await stack.api('/v1/meters?sort=staleness&after=SIL-1');
    expect(bad.status).toBe(400);
    expect(bad.body.error.details).toEqual([{ field: 'querystring.after', message: expect.any(String) }]);
    expect((await stack.api('/v1/meters?silentForMinutes=-1')).body.error.details[0].field).toBe('querystring.silentForMinutes');
  });

  it('scopes a customer to its own account\'s meters whatever it asks', async () => {
    const customer = await stack.api('/v1/tokens', { body: { role: 'customer', accountId: 'ACC-Z' } });
    const res = await stack.api('/v1/meters?accountId=ACC-Y&sort=staleness', { token: customer.body.token });
    expect(res.status).toBe(200);
    expect(ids(res)).toEqual(['SIL-3', 'SIL-2', 'SIL-1']);
  });

  it('lists concentrators with their meters, paged', async () => {
    const first = await stack.api('/v1/concentrators?limit=1');
    expect(first.status).toBe(200);
    expect(first.body.items).toEqual([{ id: 'CON-Y', meterIds: ['SIL-4'], createdAt: expect.any(String), lastConnectedAt: null, lastDisconnectedAt: null }]);
    expect(first.body.next).toBe('/v1/concentrators?limit=1&after=CON-Y');
    const second = await stack.api(first.body.next);
    expect(second.body.items.map((c: any) => [c.id, c.meterIds])).toEqual([['CON-Z', ['SIL-1', 'SIL-2', 'SIL-3']]]);
    const last = await stack.api(second.body.next);
    expect(last.body).toEqual({ items: [], next: null });
  });

  it('lists tokens without their secrets, revoked ones on request, for admins only', async () => {
    const reader = await stack.api('/v1/tokens', { body: { role: 'reader' } });
    const revoked = await stack.api('/v1/tokens', { body: { role: 'reader' } });
    expect((await stack.api(`/v1/tokens/${revoked.body.id}`, { method: 'DELETE' })).status).toBe(204);
    const res = await stack.api('/v1/tokens?role=reader');
    expect(res.status).toBe(200);
    expect(res.body.items).toEqual([{ id: reader.body.id, role: 'reader', accountId: null, createdAt: expect.any(String), revokedAt: null }]);
    expect(JSON.stringify(res.body)).not.toContain(reader.body.token);
    const all = await stack.api('/v1/tokens?includeRevoked=true');
    const listed = all.body.items.map((t: any) => t.id);
    expect(listed).toEqual(expect.arrayContaining(['bootstrap-admin', reader.body.id, revoked.body.id]));
    expect(all.body.items.find((t: any) => t.id === revoked.body.id).revokedAt).not.toBeNull();
    for (const t of all.body.items) expect(Object.keys(t).sort()).toEqual(['accountId', 'createdAt', 'id', 'revokedAt', 'role']);
    expect((await stack.api('/v1/tokens', { token: reader.body.token })).status).toBe(403);
    expect((await stack.api('/v1/concentrators', { token: reader.body.token })).status).toBe(200);
    // Each is an event naming the token that made it, never the secret.
    const events = await stack.api(`/v1/events?subjectType=token&subjectId=${revoked.body.id}`);
    expect(events.body.items.map((e: any) => [e.action, e.actor])).toEqual([['token.created', 'bootstrap-admin'], ['token.revoked', 'bootstrap-admin']]);
    expect(events.body.items[1].after.revokedAt).not.toBeNull();
    expect(JSON.stringify(events.body)).not.toContain(revoked.body.token);
  });

  it('records a concentrator\'s new meters and a rotated secret as events, without the secret', async () => {
    expect((await stack.api('/v1/concentrators/CON-Y/meters', { method: 'PUT', body: { meterIds: ['SIL-4', 'SIL-3'] } })).status).toBe(200);
    const rotated = await stack.api('/v1/devices/SIL-4/secret', { method: 'PUT', body: {} });
    expect(rotated.status).toBe(200);
    const con = await stack.api('/v1/events?subjectType=concentrator&subjectId=CON-Y');
    expect(con.body.items.map((e: any) => [e.action, e.before.meterIds, e.after.meterIds])).toEqual([['concentrator.meters_replaced', ['SIL-4'], ['SIL-3', 'SIL-4']]]);
    const dev = await stack.api('/v1/accounts/ACC-Y/events');
    expect(dev.body.items.map((e: any) => [e.action, e.subjectId, e.after])).toEqual([['device.secret_rotated', 'SIL-4', { kind: 'meter', generated: true }]]);
    expect(JSON.stringify(dev.body)).not.toContain(rotated.body.mqttPassword);
  });
});
