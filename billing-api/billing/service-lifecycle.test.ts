/**
 * Service lifecycle through the HTTP API against the real stack: nothing is billed before a move-in, the
 * first and last cycles are prorated (fixed charges by days in service), a meter exchange continues the
 * account's cycle with each meter billed for its part, a move-out ends billing, and every change is an
 * event naming who made it. Amounts: the flat tariff of close.test.ts (0.20/kWh, 0.50/day, 10/month, 5%).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageModes } from '../../test/support/database.js';
import { startTestStack, type TestStack } from '../../test/support/stack.js';
import { billingRun, billsOf, createAccount, createMeter, createTariff, flatTariff, insertReadings, lineOf } from '../test-support.js';

describe.each(storageModes())('service lifecycle (%s storage)', (mode) => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack(mode, { BILLING_CRON: 'off' });
    await createTariff(stack, flatTariff('flat-uk', { currency: 'GBP', timeZone: 'Europe/London', rate: '0.20', perDay: '0.50', perMonth: '10', tax: '0.05' }));
    // Move-in on 16 September: readings of all September are stored, only the second half is billed.
    await createAccount(stack, 'S-IN', 'Europe/London', 1);
    await createMeter(stack, 'M-S-IN', 'S-IN', 'Europe/London', 'flat-uk');
    await insertReadings(stack, 'M-S-IN', '2026-08-31T23:00:00Z', 2880, 50_000);
    // Meter exchange on 16 September: the old meter reports the first half, the new one the second.
    await createAccount(stack, 'S-EX', 'Europe/London', 1);
    await createMeter(stack, 'M-S-EX-OLD', 'S-EX', 'Europe/London', 'flat-uk');
    await insertReadings(stack, 'M-S-EX-OLD', '2026-08-31T23:00:00Z', 1440, 50_000);
    await createMeter(stack, 'M-S-EX-NEW', 'S-EX', 'Europe/London', 'flat-uk');
    await insertReadings(stack, 'M-S-EX-NEW', '2026-09-15T23:00:00Z', 1440, 50_000);
    // Move-out on 11 October: September whole, October prorated, nothing after.
    await createAccount(stack, 'S-OUT', 'Europe/London', 1);
    await createMeter(stack, 'M-S-OUT', 'S-OUT', 'Europe/London', 'flat-uk');
    await insertReadings(stack, 'M-S-OUT', '2026-08-31T23:00:00Z', 2880 + 2976, 50_000);
    // A meter removed on 11 September without a replacement or a move-out.
    await createAccount(stack, 'S-END', 'Europe/London', 1);
    await createMeter(stack, 'M-S-END', 'S-END', 'Europe/London', 'flat-uk');
    await insertReadings(stack, 'M-S-END', '2026-08-31T23:00:00Z', 2880, 50_000);
  });
  afterAll(async () => stack?.close());

  it('records move-in, meter exchange and move-out as events naming who made them', async () => {
    const moveIn = await stack.api('/v1/accounts/S-IN/move-in', { body: { at: '2026-09-16T00:00:00+01:00' } });
    expect(moveIn.status, JSON.stringify(moveIn.body)).toBe(200);
    expect(moveIn.body).toMatchObject({ accountId: 'S-IN', service: { start: '2026-09-15T23:00:00Z', end: null }, billsAffected: [] });
    const exchange = await stack.api('/v1/meters/M-S-EX-OLD/exchange', { body: { newMeterId: 'M-S-EX-NEW', at: '2026-09-15T23:00:00Z' } });
    expect(exchange.status, JSON.stringify(exchange.body)).toBe(200);
    expect(exchange.body.meters).toEqual([
      { meterId: 'M-S-EX-NEW', service: { start: '2026-09-15T23:00:00Z', end: null }, replaces: 'M-S-EX-OLD' },
      { meterId: 'M-S-EX-OLD', service: { start: null, end: '2026-09-15T23:00:00Z' }, replaces: null },
    ]);
    const out = await stack.api('/v1/accounts/S-OUT/move-out', { body: { at: '2026-10-11T00:00:00+01:00' } });
    expect(out.status, JSON.stringify(out.body)).toBe(200);
    expect((await stack.api('/v1/meters/M-S-END/service-end', { body: { at: '2026-09-10T23:00:00Z' } })).status).toBe(200);
    const state = await stack.api('/v1/accounts/S-EX/service');
    expect(state.status).toBe(200);
    expect(state.body.events).toEqual([
      { event: 'meter_exchange', meterId: 'M-S-EX-OLD', effective: '2026-09-15T23:00:00Z', detail: { newMeterId: 'M-S-EX-NEW' }, recordedBy: expect.any(String), recordedAt: expect.any(String) },
    ]);
  });

  it('refuses what cannot be: an end before the start, an exchange with another account\'s meter, unknown ids, a reader', async () => {
    const early = await stack.api('/v1/accounts/S-IN/move-out', { body: { at: '2026-09-01T00:00:00Z' } });
    expect(early.status).toBe(400);
    expect(early.body.error.details[0].field).toBe('body.at');
    const foreign = await stack.api('/v1/meters/M-S-OUT/exchange', { body: { newMeterId: 'M-S-IN', at: '2026-10-01T00:00:00Z' } });
    expect(foreign.status).toBe(400);
    expect(foreign.body.error.details[0]).toMatchObject({ field: 'body.newMeterId', message: expect.stringMatching(/belongs to account "S-IN"/) });
    expect((await stack.api('/v1/meters/NO-SUCH/service-end', { body: { at: '2026-10-01T00:00:00Z' } })).status).toBe(404);
    expect((await stack.api('/v1/accounts/NO-SUCH/move-in', { body: { at: '2026-10-01T00:00:00Z' } })).status).toBe(404);
    expect((await stack.api('/v1/accounts/S-IN/move-in', { body: { at: 'yesterday' } })).status).toBe(400);
    const reader = (await stack.api('/v1/tokens', { body: { role: 'reader' } })).body.token;
    expect((await stack.api('/v1/accounts/S-IN/move-in', { body: { at: '2026-10-01T00:00:00Z' }, token: reader })).status).toBe(403);
  });

  it('bills nothing before service start and prorates the first, exchanged and last cycles', async () => {
    const run = await billingRun(stack, '2026-11-20T00:00:00Z');
    expect(run.body.state).toBe('finished');
    // The account whose only meter was removed: September prorated, then October named as not billable.
    expect(run.body.failures).toEqual([
      { accountId: 'S-END', cycle: { from: '2026-09-30T23:00:00Z', to: '2026-11-01T00:00:00Z' }, code: 'no_meter_in_service', message: expect.stringMatching(/move-out/) },
    ]);
    // 10 days, 960 intervals: 48 kWh x 0.20 = 9.60; 10 x 0.50 = 5.00; 10 x 0.333333 = 3.33; subtotal 17.93; tax 0.8965 -> 0.90; total 18.83
    expect((await billsOf(stack, 'S-END')).map((b) => [b.id, b.total])).toEqual([['S-END.2026-09-01', '18.83']]);

    // Move-in: in service 15 September 23:00Z to 30 September 23:00Z, 15 of 30 days, 1440 intervals.
    // 72 kWh x 0.20 = 14.40; 15 x 0.50 = 7.50; 10 x 15/30 = 5.00; subtotal 26.90; tax 1.345 -> 1.35; total 28.25
    const first = (await stack.api('/v1/bills/S-IN.2026-09-01')).body;
    const [m] = first.meters;
    expect(m.inService).toEqual({ from: '2026-09-15T23:00:00Z', to: '2026-09-30T23:00:00Z' });
    expect(lineOf(m.lines, 'energy')).toEqual([expect.objectContaining({ quantity: '72', amount: '14.40' })]);
    expect(lineOf(m.lines, 'fixed').map((l: any) => [l.quantity, l.unit, l.amount])).toEqual([['15', 'day', '7.50'], ['0.5', 'month', '5.00']]);
    expect(m.coverage).toEqual({ expectedIntervals: 1440, actualIntervals: 1440, estimatedIntervals: 0, missingIntervals: 0 });
    expect(first).toMatchObject({ subtotal: '26.90', taxes: '1.35', total: '28.25' });
    // No bill before the move-in's cycle.
    expect((await billsOf(stack, 'S-IN')).map((b) => b.id)[0]).toBe('S-IN.2026-09-01');

    // Exchange: one September bill, each meter 15 days (28.25 each, taxed per meter), days summing to 30.
    const exchanged = (await stack.api('/v1/bills/S-EX.2026-09-01')).body;
    expect(exchanged.meters.map((x: any) => [x.meterId, x.inService, x.total])).toEqual([
      ['M-S-EX-NEW', { from: '2026-09-15T23:00:00Z', to: '2026-09-30T23:00:00Z' }, '28.25'],
      ['M-S-EX-OLD', { from: '2026-08-31T23:00:00Z', to: '2026-09-15T23:00:00Z' }, '28.25'],
    ]);
    expect(exchanged.meters.flatMap((x: any) => lineOf(x.lines, 'fixed').filter((l: any) => l.unit === 'day').map((l: any) => Number(l.quantity)))).toEqual([15, 15]);
    expect(exchanged.coverage).toEqual({ expectedIntervals: 2880, actualIntervals: 2880, estimatedIntervals: 0, missingIntervals: 0 });
    expect(exchanged.total).toBe('56.50');

    // Move-out on 10 October 23:00Z: September whole; October 10 of 31 days, 960 intervals.
    // 48 kWh x 0.20 = 9.60; 10 x 0.50 = 5.00; 10 x 0.322581 = 3.23; subtotal 17.83; tax 0.8915 -> 0.89; total 18.72
    const bills = await billsOf(stack, 'S-OUT');
    expect(bills.map((b) => [b.id, b.total])).toEqual([
      ['S-OUT.2026-09-01', '56.49'],
      ['S-OUT.2026-10-01', '18.72'],
    ]);
    const last = (await stack.api('/v1/bills/S-OUT.2026-10-01')).body;
    expect(last.meters[0].inService).toEqual({ from: '2026-09-30T23:00:00Z', to: '2026-10-10T23:00:00Z' });
    expect(lineOf(last.meters[0].lines, 'fixed').map((l: any) => [l.quantity, l.unit, l.amount])).toEqual([['10', 'day', '5.00'], ['0.322581', 'month', '3.23']]);
  });
});
