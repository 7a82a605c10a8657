/**
 * Tariffs, assignments and charges through the real API against the real database. Expected amounts are
 * computed by hand in each test, not taken from the rating core.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exampleTariff } from '../rating/index.js';
import { storageModes } from '../test/support/database.js';
import { connectDevice, endClient, publishAcked } from '../test/support/mqtt.js';
import { provisionFleet, startTestStack, type TestStack } from '../test/support/stack.js';

const flatTariff = (id: string, rate: string, extra: Record<string, unknown> = {}) => ({
  id,
  name: `Flat ${rate}`,
  currency: { code: 'GBP', minorUnit: 2 },
  timeZone: 'Europe/London',
  seasons: [{ id: 'all', fromMonth: 1, toMonth: 12 }],
  energy: {
    periods: [{ id: 'any', tiers: [{ rate, adj: '0.01' }], sell: '0.05' }],
    schedule: [{ seasons: ['all'], dayTypes: ['weekday', 'weekend', 'holiday'], periods: [{ from: '00:00', period: 'any' }] }],
  },
  fixedCharges: [{ name: 'Standing charge', amount: '1', per: 'day' }],
  taxes: [{ name: 'VAT', rate: '0.1' }],
  ...extra,
});

describe('tariffs, assignments and charges', () => {
  let stack: TestStack;
  let secrets: Record<string, string>;

  beforeAll(async () => {
    stack = await startTestStack(storageModes()[0]);
    ({ secrets } = await provisionFleet(stack, { meters: 3 }));
  });
  afterAll(async () => stack?.close());

  const insertDay = async (meterId: string, dayStartIso: string, intervals: number, importMwh: number, exportMwh = 0) => {
    await stack.pool.query(
      `INSERT INTO readings (meter_id, interval_start, interval_seconds, import_mwh, export_mwh, quality)
       SELECT $1, $2::timestamptz + g * interval '15 minutes', 900, $3, $4, 'actual' FROM generate_series(0, $5 - 1) g`,
      [meterId, dayStartIso, importMwh, exportMwh, intervals],
    );
  };

  it('stores a native tariff, returns it, and versions it only forward in time', async () => {
    const created = await stack.api('/v1/tariffs', { body: exampleTariff });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id: exampleTariff.id, version: 1, source: 'native' });
    const fetched = await stack.api(`/v1/tariffs/${exampleTariff.id}`);
    expect(fetched.status).toBe(200);
    expect(fetched.body.document).toEqual(exampleTariff);
    expect((await stack.api('/v1/tariffs', { body: exampleTariff })).status).toBe(409);
    const v2 = await stack.api('/v1/tariffs', { body: { ...exampleTariff, effectiveFrom: '2027-01-01T00:00:00-08:00' } });
    expect(v2.status).toBe(201);
    expect(v2.body.version).toBe(2);
    const again = await stack.api(`/v1/tariffs/${exampleTariff.id}?version=1`);
    expect(again.body.effectiveFrom).toBe('2026-01-01T08:00:00.000Z');
    expect(again.body.versions).toHaveLength(2);
    const list = await stack.api('/v1/tariffs');
    expect(list.body.items.map((t: { id: string }) => t.id)).toContain(exampleTariff.id);
  });

  it('lists every problem of an invalid tariff document', async () => {
    const res = await stack.api('/v1/tariffs', { body: { ...flatTariff('bad tariff', 'x'), timeZone: 'Mars/Olympus', colour: 'red' } });
    expect(res.status).toBe(400);
    const fields = res.body.error.details.map((d: { field: string }) => d.field).join(' ');
    expect(fields).toMatch(/body\.id/);
    expect(fields).toMatch(/body\.timeZone/);
    expect(fields).toMatch(/rate/);
    expect(fields).toMatch(/colour/);
  });

  it('imports a URDB rate and refuses unsupported features naming each field', async () => {
    const rate = JSON.parse(readFileSync(new URL('../rating/fixtures/urdb-multi-tier-tou.json', import.meta.url), 'utf8'));
    const ok = await stack.api('/v1/tariffs/urdb', { body: { id: 'coop-lp-tou', timezone: 'America/Los_Angeles', rate } });
    expect(ok.status).toBe(201);
    expect(ok.body.source).toBe('urdb');
    expect(ok.body.document.energy.periods.map((p: { id: string }) => p.id)).toEqual(expect.arrayContaining(['p0', 'p1']));
    const bad = structuredClone(rate);
    bad.energyratestructure[0][0].unit = 'kWh daily';
    bad.coincidentratestructure = [[{ rate: 3 }]];
    const refused = await stack.api('/v1/tariffs/urdb', { body: { id: 'coop-bad', timezone: 'America/Los_Angeles', rate: bad } });
    expect(refused.status).toBe(400);
    const fields = refused.body.error.details.map((d: { field: string }) => d.field);
    expect(fields).toEqual(expect.arrayContaining(['rate.energyratestructure[0][0].unit', expect.stringMatching(/coincidentratestructure/)]));
  });

  it('rates a day: energy x (rate + adj), export credit, daily fixed, tax half-up on the subtotal', async () => {
    expect((await stack.api('/v1/tariffs', { body: flatTariff('flat-a', '0.10') })).status).toBe(201);
    const assign = await stack.api('/v1/meters/MTR-000001/tariff', { method: 'PUT', body: { tariffId: 'flat-a', effectiveFrom: '2026-01-01T00:00:00Z' } });
    expect(assign.status).toBe(200);
    // 96 intervals of 250.5 Wh import and 10 Wh export on 2026-03-10 (a Tuesday, GMT).
    await insertDay('MTR-000001', '2026-03-10T00:00:00Z', 96, 250_500, 10_000);
    const res = await stack.api('/v1/meters/MTR-000001/charges?from=2026-03-10T00:00:00Z&to=2026-03-11T00:00:00Z');
    expect(res.status).toBe(200);
    const c = res.body;
    // import 96 x 250.5 Wh = 24.048 kWh at 0.11 = 2.64528 -> 2.65
    const energy = c.lines.find((l: { type: string }) => l.type === 'energy');
    expect(energy).toMatchObject({ quantity: '24.048', rate: '0.11', amount: '2.65' });
    // export 96 x 10 Wh = 0.96 kWh at 0.05 = 0.048 -> -0.05
    expect(c.lines.find((l: { type: string }) => l.type === 'export_credit')).toMatchObject({ quantity: '0.96', amount: '-0.05' });
    expect(c.lines.find((l: { type: string }) => l.type === 'fixed')).toMatchObject({ quantity: '1', amount: '1.00' });
    // subtotal 2.65 - 0.05 + 1.00 = 3.60; VAT 10% = 0.36; total 3.96
    expect(c).toMatchObject({ subtotal: '3.60', taxes: '0.36', total: '3.96', currency: 'GBP', tariffId: 'flat-a', meterId: 'MTR-000001' });
    expect(c.coverage).toEqual({ expectedIntervals: 96, actualIntervals: 96, estimatedIntervals: 0, missingIntervals: 0 });
    expect(c.asOf).toBe('2026-03-11T00:00:00Z');
    expect([c.from, c.to]).toEqual(['2026-03-10T00:00:00Z', '2026-03-11T00:00:00Z']);
  });

  it('counts 100 intervals and one day on the October fall-back day in London', async () => {
    await stack.api('/v1/meters/MTR-000002/tariff', { method: 'PUT', body: { tariffId: 'flat-a', effectiveFrom: '2026-01-01T00:00:00Z' } });
    // 2026-10-25 local day in Europe/London runs from 2026-10-24T23:00Z (BST) to 2026-10-26T00:00Z (GMT): 25 h.
    await insertDay('MTR-000002', '2026-10-24T23:00:00Z', 100, 1_000);
    const res = await stack.api('/v1/meters/MTR-000002/charges?from=2026-10-25T00:00:00%2B01:00&to=2026-10-26T00:00:00Z');
    expect(res.status).toBe(200);
    expect(res.body.coverage.expectedIntervals).toBe(100);
    expect(res.body.lines.find((l: { type: string }) => l.type === 'energy').quantity).toBe('0.1');
    expect(res.body.lines.find((l: { type: string }) => l.type === 'fixed').quantity).toBe('1');
  });

  it('rates a window across an assignment change piecewise and never accepts an earlier change', async () => {
    expect((await stack.api('/v1/tariffs', { body: flatTariff('flat-b', '0.20') })).status).toBe(201);
    await stack.api('/v1/meters/MTR-000003/tariff', { method: 'PUT', body: { tariffId: 'flat-a', effectiveFrom: '2026-01-01T00:00:00Z' } });
    const change = await stack.api('/v1/meters/MTR-000003/tariff', { method: 'PUT', body: { tariffId: 'flat-b', effectiveFrom: '2026-04-01T12:00:00Z' } });
    expect(change.status).toBe(200);
    expect(change.body.assignments.map((a: { tariffId: string }) => a.tariffId)).toEqual(['flat-a', 'flat-b']);
    const earlier = await stack.api('/v1/meters/MTR-000003/tariff', { method: 'PUT', body: { tariffId: 'flat-a', effectiveFrom: '2026-03-01T00:00:00Z' } });
    expect(earlier.status).toBe(409);
    // 2026-04-01 is BST (UTC+1): 96 intervals of 1 kWh from 2026-03-31T23:00Z; 52 before 12:00Z, 44 after.
    await insertDay('MTR-000003', '2026-03-31T23:00:00Z', 96, 1_000_000);
    const res = await stack.api('/v1/meters/MTR-000003/charges?from=2026-03-31T23:00:00Z&to=2026-04-01T23:00:00Z');
    expect(res.status).toBe(200);
    const energy = res.body.lines.filter((l: { type: string }) => l.type === 'energy');
    expect(energy.map((l: { quantity: string; rate: string }) => [l.quantity, l.rate])).toEqual([['52', '0.11'], ['44', '0.21']]);
    // 52 x 0.11 = 5.72; 44 x 0.21 = 9.24
    expect(energy.map((l: { amount: string }) => l.amount)).toEqual(['5.72', '9.24']);
    expect(res.body.tariffIds).toEqual(['flat-a', 'flat-b']);
    expect(res.body.tariffId).toBe('flat-b');
  });

  it('reflects a reading in the charges as soon as its PUBACK has arrived', async () => {
    const meter = await connectDevice(stack.mqttUrl, 'MTR-000001', secrets['MTR-000001']);
    const before = await stack.api('/v1/meters/MTR-000001/charges?from=2026-03-12T00:00:00Z&to=2026-03-13T00:00:00Z');
    await publishAcked(meter, 'meters/MTR-000001/readings', JSON.stringify({ intervalStart: '2026-03-12T08:00:00Z', intervalSeconds: 900, importWh: 1000 }));
    const after = await stack.api('/v1/meters/MTR-000001/charges?from=2026-03-12T00:00:00Z&to=2026-03-13T00:00:00Z');
    await endClient(meter);
    expect(before.body.coverage.actualIntervals).toBe(0);
    expect(after.body.coverage.actualIntervals).toBe(1);
    expect(after.body.lines.find((l: { type: string }) => l.type === 'energy')).toMatchObject({ quantity: '1', amount: '0.11' });
  });

  it('answers 409 for a meter without a tariff, 400 for a reversed window, and 404 to another account\'s customer', async () => {
    await stack.api('/v1/accounts', { body: { id: 'ACC-2', name: 'Other', timezone: 'Europe/London', billingDay: 1 } });
    const m = await stack.api('/v1/meters', { body: { id: 'MTR-OTHER', accountId: 'ACC-2', timezone: 'Europe/London', intervalSeconds: 900 } });
    expect(m.status).toBe(201);
    expect((await stack.api('/v1/meters/MTR-OTHER/charges?from=2026-03-10T00:00:00Z&to=2026-03-11T00:00:00Z')).status).toBe(409);
    expect((await stack.api('/v1/meters/MTR-000001/charges?from=2026-03-11T00:00:00Z&to=2026-03-10T00:00:00Z')).status).toBe(400);
    const token = await stack.api('/v1/tokens', { body: { role: 'customer', accountId: 'ACC-2' } });
    const asCustomer = await stack.api('/v1/meters/MTR-000001/charges?from=2026-03-10T00:00:00Z&to=2026-03-11T00:00:00Z', { token: token.body.token });
    expect(asCustomer.status).toBe(404);
  });
});
