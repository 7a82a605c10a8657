/**
 * Tariffs, assignments and charges through the real API against the real database. Expected amounts are
 * computed by hand in each test, not taken from the rating core.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exampleTariff } from '../../rating/index.js';
import { storageModes } from '../../test/support/database.js';
import { connectDevice, endClient, publishAcked } from '../../test/support/mqtt.js';
import { provisionFleet, startTestStack, type TestStack } from '../../test/support/stack.js';

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
    const rate = JSON.parse(readFileSync(new URL('../../rating/fixtures/urdb-multi-tier-tou.json', import.meta.url), 'utf8'));
    const ok = await stack.api('/v1/tariffs/urdb', { body: { id: 'coop-lp-tou', timezone: 'America/Los_Angeles', rate } });
    expect(ok.status).toBe(201);
    expect(ok.body.source).toBe('urdb');
    expect(ok.body.document.energy.periods.map((p: { id: string }) => p.id)).toEqual(expect.arrayContaining(['p0', 'p1']));
    const bad = structuredClone(rate);
    bad.energyratestructure[0][0].unit = 'kWh/kVA';
    bad.coincidentratestructure = [[{ rate: 3 }]];
    const refused = await stack.api('/v1/tariffs/urdb', { body: { id: 'coop-bad', timezone: 'America/Los_Angeles', rate: bad } });
    expect(refused.status).toBe(400);
    const fields = refused.body.error.details.map((d: { field: string }) => d.field);
    expect(fields.sort()).toEqual(['rate.coincidentratestructure', 'rate.energyratestructure[0][0].unit']);
  });

  it('imports a URDB rate with warnings, its tier scope, startdate as effectiveFrom, and its attributes shown on GET and on the charges', async () => {
    const rate = {
      label: 'warned-rate',
      name: 'Tiered with attributes',
      startdate: 1767254400, // 2026-01-01T08:00:00Z, local midnight in Los Angeles
      enddate: 1498806000, // 2017: past
      energyratestructure: [
        [{ max: 10, rate: 0.1 }, { rate: -0.02 }],
        [{ max: 10, rate: 0.3 }, { rate: 0.4 }],
      ],
      energyweekdayschedule: Array.from({ length: 12 }, () => Array.from({ length: 24 }, (_, h) => (h < 12 ? 0 : 1))),
      energyweekendschedule: Array.from({ length: 12 }, () => Array.from({ length: 24 }, (_, h) => (h < 12 ? 0 : 1))),
      fixedattrs: [{ 'Outside City Monthly Charge': '$11.75' }],
    };
    const created = await stack.api('/v1/tariffs/urdb', { body: { timezone: 'America/Los_Angeles', rate, tierScope: 'period' } });
    expect(created.status).toBe(201);
    expect(created.body.effectiveFrom).toBe('2026-01-01T08:00:00.000Z');
    expect(created.body.warnings).toEqual([
      { field: 'rate.energyratestructure[0][1].rate', message: 'negative price -0.02 $/kWh: billed as a credit, as stated' },
      { field: 'rate.enddate', message: 'the rate ended on 2017-06-30T07:00:00Z: it may have been superseded' },
    ]);
    const fetched = await stack.api('/v1/tariffs/warned-rate');
    expect(fetched.body.document.energy.tierScope).toBe('period');
    expect(fetched.body.document.attributes).toEqual({ fixed: [{ name: 'Outside City Monthly Charge', value: '$11.75' }] });
    // The same rate as a window-tiered version from July: a new version, effectiveFrom as the request says.
    const v2 = await stack.api('/v1/tariffs/urdb', { body: { timezone: 'America/Los_Angeles', rate, effectiveFrom: '2026-07-01T00:00:00-07:00' } });
    expect(v2.status).toBe(201);
    expect(v2.body.document.energy.tierScope).toBe('window');
    await stack.api('/v1/accounts', { body: { id: 'ACC-LA', name: 'Los Angeles', timezone: 'America/Los_Angeles', billingDay: 1 } });
    expect((await stack.api('/v1/meters', { body: { id: 'MTR-LA', accountId: 'ACC-LA', timezone: 'America/Los_Angeles', intervalSeconds: 900, tariffId: 'warned-rate' } })).status).toBe(201);
    // 0.5 kWh a quarter hour: 24 kWh in p0 (00-12) and 24 kWh in p1 (12-24), on 2 June (period tiers) and on 2 July (window tiers).
    await insertDay('MTR-LA', '2026-06-02T07:00:00Z', 96, 500_000);
    await insertDay('MTR-LA', '2026-07-02T07:00:00Z', 96, 500_000);
    const lines = async (day: string) => {
      const res = await stack.api(`/v1/meters/MTR-LA/charges?from=${day}T00:00:00-07:00&to=${day}T23:59:59-07:00`);
      expect(res.status).toBe(200);
      expect(res.body.notes).toEqual(['fixed attribute (informative, not rated): Outside City Monthly Charge: $11.75']);
      return res.body.lines.filter((l: { type: string }) => l.type === 'energy').map((l: { period: string; tier: number; quantity: string; amount: string }) => [l.period, l.tier, l.quantity, l.amount]);
    };
    // Each period its own 10 kWh: p0 10 x 0.1 + 14 x -0.02; p1 10 x 0.3 + 14 x 0.4.
    expect(await lines('2026-06-02')).toEqual([['p0', 1, '10', '1.00'], ['p0', 2, '14', '-0.28'], ['p1', 1, '10', '3.00'], ['p1', 2, '14', '5.60']]);
    // The window's 10 kWh are used up by p0 in the morning: p1 is all tier 2.
    expect(await lines('2026-07-02')).toEqual([['p0', 1, '10', '1.00'], ['p0', 2, '14', '-0.28'], ['p1', 2, '24', '9.60']]);
  });

  it('ratchets the billing demand to a preceding month read from the stored readings, and says which month set it', async () => {
    const rate = {
      label: 'ratchet-rate',
      name: 'Flat demand with a ratchet',
      energyratestructure: [[{ rate: 0.1 }]],
      energyweekdayschedule: Array.from({ length: 12 }, () => Array(24).fill(0)),
      energyweekendschedule: Array.from({ length: 12 }, () => Array(24).fill(0)),
      flatdemandstructure: [[{ rate: 10 }]],
      flatdemandmonths: Array(12).fill(0),
      lookbackpercent: 0.8,
      lookbackrange: 0,
      lookbackmonths: Array(12).fill(true),
    };
    const created = await stack.api('/v1/tariffs/urdb', { body: { timezone: 'Europe/London', rate, billingDemand: { lookbackHorizonMonths: 3 } } });
    expect(created.status).toBe(201);
    expect(created.body.warnings).toEqual([]);
    expect((await stack.api('/v1/meters', { body: { id: 'MTR-RATCHET', accountId: 'ACC-1', timezone: 'Europe/London', intervalSeconds: 900, tariffId: 'ratchet-rate' } })).status).toBe(201);
    // April: one quarter hour of 25 kWh (100 kW); June: 10 kW at most; July: 12.5 kW. London is UTC+1 in summer.
    await insertDay('MTR-RATCHET', '2026-04-14T23:00:00Z', 1, 25_000_000);
    await insertDay('MTR-RATCHET', '2026-06-14T23:00:00Z', 4, 2_500_000);
    await insertDay('MTR-RATCHET', '2026-07-01T23:00:00Z', 96, 3_125_000);
    const july = await stack.api('/v1/meters/MTR-RATCHET/charges?from=2026-07-01T00:00:00%2B01:00&to=2026-08-01T00:00:00%2B01:00');
    expect(july.status).toBe(200);
    const demand = july.body.lines.filter((l: { type: string }) => l.type === 'demand');
    // 80 % of April's 100 kW = 80 kW > July's 12.5 kW: 80 x 10 = 800.00.
    expect(demand).toEqual([
      expect.objectContaining({ period: 'flat', quantity: '80', measuredKw: '12.5', amount: '800.00', billingDemandSetBy: { from: '2026-03-31T23:00:00Z', to: '2026-04-30T23:00:00Z', peakKw: '100', lookbackPercent: '0.8' } }),
    ]);
    expect(july.body.pieces[0].billingDemand).toMatchObject({ kw: '80', measuredKw: '12.5', setBy: { from: '2026-03-31T23:00:00Z' } });
    // August looks back May, June and July only: April no longer counts; 80 % of July's 12.5 kW = 10 kW binds.
    await insertDay('MTR-RATCHET', '2026-08-01T23:00:00Z', 4, 1_000_000);
    const august = await stack.api('/v1/meters/MTR-RATCHET/charges?from=2026-08-01T00:00:00%2B01:00&to=2026-09-01T00:00:00%2B01:00');
    expect(august.body.lines.filter((l: { type: string }) => l.type === 'demand').map((l: { quantity: string; measuredKw?: string }) => [l.quantity, l.measuredKw])).toEqual([['10', '4']]);
  });

  it('nets import against export under net metering, with the kWh banks carried in since the last true-up', async () => {
    const rate = {
      label: 'nem-rate',
      dgrules: 'Net Metering',
      energyratestructure: [[{ rate: 0.1, sell: 0.1 }]],
      energyweekdayschedule: Array.from({ length: 12 }, () => Array(24).fill(0)),
      energyweekendschedule: Array.from({ length: 12 }, () => Array(24).fill(0)),
    };
    const created = await stack.api('/v1/tariffs/urdb', { body: { timezone: 'Europe/London', rate } });
    expect(created.status).toBe(201);
    // The defaults apply: a kWh bank per period, true-up in December at 0 $/kWh.
    expect(created.body.document.netMetering).toEqual({});
    expect((await stack.api('/v1/meters', { body: { id: 'MTR-NEM', accountId: 'ACC-1', timezone: 'Europe/London', intervalSeconds: 900, tariffId: 'nem-rate' } })).status).toBe(201);
    const charges = async (from: string, to: string) => {
      const res = await stack.api(`/v1/meters/MTR-NEM/charges?from=${from}&to=${to}`);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return res.body;
    };
    // 5 January: 96 kWh imported; 6 January: 48 kWh exported (GMT).
    await insertDay('MTR-NEM', '2026-01-05T00:00:00Z', 96, 1_000_000);
    await insertDay('MTR-NEM', '2026-01-06T00:00:00Z', 96, 0, 500_000);
    expect((await charges('2026-01-05T00:00:00Z', '2026-01-06T00:00:00Z')).total).toBe('9.60');
    // Netted over the window: 96 - 48 = 48 kWh billed at 0.10.
    const twoDays = await charges('2026-01-05T00:00:00Z', '2026-01-07T00:00:00Z');
    expect(twoDays.lines).toEqual([expect.objectContaining({ type: 'energy', period: 'p0', quantity: '48', amount: '4.80' })]);
    // 6 January alone follows the part of January before it (a deficit carries nothing): its 48 kWh are banked.
    const sixth = await charges('2026-01-06T00:00:00Z', '2026-01-07T00:00:00Z');
    expect(sixth.total).toBe('0.00');
    expect(sixth.metering.carriedOut.banks).toEqual([{ period: 'p0', kWh: '48', slot: 0 }]);
    // March: 48 kWh exported; April: 24 kWh imported, offset by March's bank: nothing billed, 24 kWh carried on.
    await insertDay('MTR-NEM', '2026-03-03T00:00:00Z', 96, 0, 500_000);
    await insertDay('MTR-NEM', '2026-04-07T23:00:00Z', 96, 250_000);
    const march = await charges('2026-03-01T00:00:00Z', '2026-04-01T00:00:00%2B01:00');
    expect(march.metering.carriedOut.banks).toEqual([{ period: 'p0', kWh: '48', slot: 0 }]);
    const april = await charges('2026-04-01T00:00:00%2B01:00', '2026-05-01T00:00:00%2B01:00');
    expect(april.total).toBe('0.00');
    expect(april.metering.carriedIn.banks).toEqual([{ period: 'p0', kWh: '48', slot: 0 }]);
    expect(april.metering.periods).toEqual([expect.objectContaining({ period: 'p0', importKwh: '24', bankInKwh: '48', billedKwh: '0', surplusKwh: '24' })]);
    // A settlement year later (true-up in December at 0 $/kWh) nothing is carried: January 2027 starts empty.
    await insertDay('MTR-NEM', '2027-01-05T00:00:00Z', 96, 250_000);
    const january = await charges('2027-01-01T00:00:00Z', '2027-02-01T00:00:00Z');
    expect(january.metering.carriedIn.banks).toEqual([]);
    expect(january.total).toBe('2.40');
  });

  it('keeps the per-period meaning of tariff versions stored before window tiers (migration 011)', async () => {
    const legacy = { ...flatTariff('legacy-tiers', '0.1'), id: 'legacy-tiers' } as Record<string, any>;
    legacy.energy = { ...legacy.energy, periods: [{ id: 'any', tiers: [{ max: '5', rate: '0.1' }, { rate: '0.2' }] }] };
    await stack.pool.query(`INSERT INTO tariffs (id, version, document) VALUES ('legacy-tiers', 1, $1), ('no-energy', 1, $2)`, [
      JSON.stringify(legacy),
      JSON.stringify({ ...flatTariff('no-energy', '0'), energy: undefined, fixedCharges: [{ name: 'Standing charge', amount: '1', per: 'day' }] }),
    ]);
    const migration = readFileSync(new URL('../../migrations/011_tariff_tier_scope.sql', import.meta.url), 'utf8');
    await stack.pool.query(migration.split('-- Down Migration')[0]);
    const rows = await stack.pool.query(`SELECT id, document FROM tariffs WHERE id IN ('legacy-tiers', 'no-energy') ORDER BY id`);
    expect(rows.rows.map((r) => [r.id, r.document.energy?.tierScope])).toEqual([['legacy-tiers', 'period'], ['no-energy', undefined]]);
    // Every version already stored states its scope after the migration: none is left to the new default.
    const unstated = await stack.pool.query(`SELECT count(*)::int AS n FROM tariffs WHERE document ? 'energy' AND NOT (document->'energy' ? 'tierScope')`);
    expect(unstated.rows[0].n).toBe(0);
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
