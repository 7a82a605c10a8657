/**
 * GET /v1/meters/{id}/consumption through the real API: local-time buckets across both DST changes in
 * Los Angeles (a 25-hour and a 23-hour day, two buckets for the repeated hour), months in another zone,
 * kWh per TOU period (the example tariff's winter schedule: off_peak, 16:30-21:00 mid_peak), exact
 * decimals, paging and scoping. Expected values are counted by hand from the readings inserted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exampleTariff } from '../../rating/index.js';
import { storageModes } from '../../test/support/database.js';
import { startTestStack, type TestStack } from '../../test/support/stack.js';
import { createAccount, createMeter, createTariff, insertReadings } from '../test-support.js';

describe('consumption', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack(storageModes()[0], { BILLING_CRON: 'off' });
    await createTariff(stack, exampleTariff);
    await createAccount(stack, 'CONS', 'America/Los_Angeles', 1);
    await createAccount(stack, 'ELSE', 'America/Los_Angeles', 1);
    await createMeter(stack, 'CONS-1', 'CONS', 'America/Los_Angeles', exampleTariff.id);
    const plain = await stack.api('/v1/meters', { body: { id: 'CONS-2', accountId: 'CONS', timezone: 'America/Los_Angeles', intervalSeconds: 900 } });
    expect(plain.status).toBe(201);
    // 31 October (24 h), 1 November (25 h), 2 November (24 h), local: 292 quarter hours of 1 Wh.
    await insertReadings(stack, 'CONS-1', '2026-10-31T07:00:00Z', 292, 1000);
    // 8 March (23 h): 92 quarter hours of 2.5 Wh.
    await insertReadings(stack, 'CONS-1', '2026-03-08T08:00:00Z', 92, 2500);
    // One reading with the smallest energy the contract allows, and export.
    await insertReadings(stack, 'CONS-1', '2026-10-30T07:00:00Z', 1, 1, { exportMwh: 1500 });
    await insertReadings(stack, 'CONS-2', '2026-10-31T07:00:00Z', 4, 1000);
  });
  afterAll(async () => stack?.close());

  const get = (query: string, token?: string) => stack.api(`/v1/meters/CONS-1/consumption?${query}`, { token });

  it('days in the meter\'s zone: 24, 25 and 24 hours around the fall-back, with kWh per TOU period', async () => {
    const res = await get(`from=${encodeURIComponent('2026-10-31T00:00:00-07:00')}&to=${encodeURIComponent('2026-11-03T00:00:00-08:00')}&groupBy=day`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ meterId: 'CONS-1', groupBy: 'day', tz: 'America/Los_Angeles', from: '2026-10-31T07:00:00Z', to: '2026-11-03T08:00:00Z', next: null });
    // Mid-peak 16:30-21:00 is 18 quarter hours every day; the rest is off-peak (78, 82 on the 25-hour day, 78).
    expect(res.body.items).toEqual([
      {
        from: '2026-10-31T07:00:00Z', to: '2026-11-01T07:00:00Z', localFrom: '2026-10-31T00:00:00-07:00', importKwh: '0.096', exportKwh: '0',
        intervals: { expected: 96, actual: 96, estimated: 0 },
        periods: [{ tariffId: exampleTariff.id, period: 'off_peak', importKwh: '0.078', exportKwh: '0' }, { tariffId: exampleTariff.id, period: 'mid_peak', importKwh: '0.018', exportKwh: '0' }],
      },
      {
        from: '2026-11-01T07:00:00Z', to: '2026-11-02T08:00:00Z', localFrom: '2026-11-01T00:00:00-07:00', importKwh: '0.1', exportKwh: '0',
        intervals: { expected: 100, actual: 100, estimated: 0 },
        periods: [{ tariffId: exampleTariff.id, period: 'off_peak', importKwh: '0.082', exportKwh: '0' }, { tariffId: exampleTariff.id, period: 'mid_peak', importKwh: '0.018', exportKwh: '0' }],
      },
      {
        from: '2026-11-02T08:00:00Z', to: '2026-11-03T08:00:00Z', localFrom: '2026-11-02T00:00:00-08:00', importKwh: '0.096', exportKwh: '0',
        intervals: { expected: 96, actual: 96, estimated: 0 },
        periods: [{ tariffId: exampleTariff.id, period: 'off_peak', importKwh: '0.078', exportKwh: '0' }, { tariffId: exampleTariff.id, period: 'mid_peak', importKwh: '0.018', exportKwh: '0' }],
      },
    ]);
  });

  it('hours of the fall-back day: 25 buckets, the repeated 01:00 twice with its own offset', async () => {
    const res = await get(`from=${encodeURIComponent('2026-11-01T00:00:00-07:00')}&to=${encodeURIComponent('2026-11-02T00:00:00-08:00')}&groupBy=hour`);
    const items = res.body.items;
    expect(items).toHaveLength(25);
    expect(items.slice(0, 4).map((b: any) => [b.localFrom, b.from, b.importKwh])).toEqual([
      ['2026-11-01T00:00:00-07:00', '2026-11-01T07:00:00Z', '0.004'],
      ['2026-11-01T01:00:00-07:00', '2026-11-01T08:00:00Z', '0.004'],
      ['2026-11-01T01:00:00-08:00', '2026-11-01T09:00:00Z', '0.004'],
      ['2026-11-01T02:00:00-08:00', '2026-11-01T10:00:00Z', '0.004'],
    ]);
    expect(items[24]).toMatchObject({ localFrom: '2026-11-01T23:00:00-08:00', to: '2026-11-02T08:00:00Z' });
  });

  it('the spring-forward day has 23 hours and no 02:00', async () => {
    const day = await get(`from=${encodeURIComponent('2026-03-08T00:00:00-08:00')}&to=${encodeURIComponent('2026-03-09T00:00:00-07:00')}&groupBy=day`);
    expect(day.body.items).toEqual([expect.objectContaining({ from: '2026-03-08T08:00:00Z', to: '2026-03-09T07:00:00Z', importKwh: '0.23', intervals: { expected: 92, actual: 92, estimated: 0 } })]);
    const hours = await get(`from=${encodeURIComponent('2026-03-08T00:00:00-08:00')}&to=${encodeURIComponent('2026-03-09T00:00:00-07:00')}&groupBy=hour`);
    expect(hours.body.items).toHaveLength(23);
    expect(hours.body.items.slice(1, 3).map((b: any) => b.localFrom)).toEqual(['2026-03-08T01:00:00-08:00', '2026-03-08T03:00:00-07:00']);
  });

  it('months in another zone (tz=Europe/London), cut at the window', async () => {
    const res = await get(`from=${encodeURIComponent('2026-10-01T00:00:00+01:00')}&to=2026-12-01T00:00:00Z&groupBy=month&tz=Europe/London`);
    // London's October ends at 1 November 00:00Z: 31 October 07:00Z to then is 17 h = 68 quarter hours.
    expect(res.body.items.map((b: any) => [b.from, b.to, b.localFrom, b.importKwh, b.intervals.expected, b.intervals.actual])).toEqual([
      ['2026-09-30T23:00:00Z', '2026-11-01T00:00:00Z', '2026-10-01T00:00:00+01:00', '0.068001', 2980, 69],
      ['2026-11-01T00:00:00Z', '2026-12-01T00:00:00Z', '2026-11-01T00:00:00+00:00', '0.224', 2880, 224],
    ]);
    const cut = await get(`from=2026-10-31T12:00:00Z&to=2026-11-01T02:00:00Z&groupBy=day&tz=UTC`);
    expect(cut.body.items.map((b: any) => [b.from, b.to, b.importKwh])).toEqual([
      ['2026-10-31T12:00:00Z', '2026-11-01T00:00:00Z', '0.048'],
      ['2026-11-01T00:00:00Z', '2026-11-01T02:00:00Z', '0.008'],
    ]);
  });

  it('keeps energy exact and lists every interval, empty ones too, in pages', async () => {
    const tiny = await get('from=2026-10-30T07:00:00Z&to=2026-10-30T07:30:00Z');
    expect(tiny.body.groupBy).toBe('interval');
    expect(tiny.body.items.map((b: any) => [b.from, b.importKwh, b.exportKwh, b.intervals])).toEqual([
      ['2026-10-30T07:00:00Z', '0.000001', '0.0015', { expected: 1, actual: 1, estimated: 0 }],
      ['2026-10-30T07:15:00Z', '0', '0', { expected: 1, actual: 0, estimated: 0 }],
    ]);
    const first = await get('from=2026-11-01T07:00:00Z&to=2026-11-01T12:00:00Z&groupBy=interval&limit=10');
    expect(first.body.items).toHaveLength(10);
    expect(first.body.next).toMatch(/^\/v1\/meters\/CONS-1\/consumption\?from=2026-11-01T09%3A30%3A00.000Z&/);
    const second = await stack.api(first.body.next);
    expect(second.body.items[0].from).toBe('2026-11-01T09:30:00Z');
    expect(second.body.items).toHaveLength(10);
    expect(second.body.items.at(-1).from).toBe('2026-11-01T11:45:00Z');
    expect(second.body.next).toBeNull();
  });

  it('omits TOU periods for a meter without a tariff', async () => {
    const res = await stack.api('/v1/meters/CONS-2/consumption?from=2026-10-31T07:00:00Z&to=2026-10-31T08:00:00Z&groupBy=hour');
    expect(res.body.items).toEqual([{ from: '2026-10-31T07:00:00Z', to: '2026-10-31T08:00:00Z', localFrom: '2026-10-31T00:00:00-07:00', importKwh: '0.004', exportKwh: '0', intervals: { expected: 4, actual: 4, estimated: 0 } }]);
  });

  it('refuses bad queries with every problem listed, and hides other accounts\' meters from customers', async () => {
    const bad = await get('groupBy=week&tz=Mars/Olympus');
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.map((d: any) => d.field).sort()).toEqual(['querystring.from', 'querystring.groupBy', 'querystring.to', 'querystring.tz']);
    expect((await get('from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z')).status).toBe(400);
    expect((await get('from=2020-01-01T00:00:00Z&to=2026-11-01T00:00:00Z&groupBy=month')).status).toBe(400);
    expect((await get('from=2026-11-01T00:00:00&to=2026-11-02T00:00:00Z')).status).toBe(400);
    const other = (await stack.api('/v1/tokens', { body: { role: 'customer', accountId: 'ELSE' } })).body.token;
    const own = (await stack.api('/v1/tokens', { body: { role: 'customer', accountId: 'CONS' } })).body.token;
    expect((await get('from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z', other)).status).toBe(404);
    expect((await get('from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z', own)).status).toBe(200);
    expect((await stack.api('/v1/meters/NOPE/consumption?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z')).status).toBe(404);
  });
});
