/**
 * Bill close and late data under net metering (a kWh bank, true-up in July) around a meter's service span,
 * through the HTTP API against the real stack:
 * - readings stored before a move-in are never billed nor carried: the cycle after the move-in cycle starts
 *   from what the move-in cycle carried out;
 * - late data in the cycle where a meter's service ends (a meter exchange) re-rates it as it was closed, as
 *   the meter's final window settling the bank: a late actual equal to the estimate it replaces adjusts nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageModes } from '../../test/support/database.js';
import { startTestStack, type TestStack } from '../../test/support/stack.js';
import { billingRun, createAccount, eveningPeakUrdbRate, ingestReadings, insertReadings } from '../test-support.js';

// London, billing day 1, 15-minute intervals (UTC+1).
const APRIL = { from: '2026-03-31T23:00:00Z', intervals: 2880 };
const MAY = { from: '2026-04-30T23:00:00Z', intervals: 2976 };
const JUNE = { from: '2026-05-31T23:00:00Z', intervals: 2880 };
const JULY = { from: '2026-06-30T23:00:00Z', intervals: 2976 };
const MOVE_IN = { at: '2026-05-15T23:00:00Z', intervalsBefore: 1440 }; // 16 May
const EXCHANGE = '2026-06-10T23:00:00Z'; // 11 June
// An hour the old meter did not report on 5 June (local 12:00), estimated linearly at close.
const GAP = { from: '2026-06-05T11:00:00Z', intervals: 4 };
const QUARTER_HOUR_MS = 900_000;

const rate = eveningPeakUrdbRate({ label: 'nem-span', name: 'Net metering with a kWh bank', dgrules: 'Net Metering', monthlyCharge: 5, periods: [[{ rate: 0.2, sell: 0.05 }], [{ rate: 0.3, sell: 0.05 }]] });
const netMetering = { carryOver: 'kWh', trueUpMonth: 7, trueUpSellRate: '0.04' };
const at = (iso: string, intervals: number) => new Date(Date.parse(iso) + intervals * QUARTER_HOUR_MS).toISOString();

describe.each(storageModes())('net metering around a service span (%s storage)', (mode) => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack(mode, { BILLING_CRON: 'off' });
    const tariff = await stack.api('/v1/tariffs/urdb', { body: { id: 'nem-span', effectiveFrom: '2026-01-01T00:00:00Z', timezone: 'Europe/London', rate, netMetering } });
    expect(tariff.status, JSON.stringify(tariff.body)).toBe(201);
    const meter = async (id: string, accountId: string) => {
      const res = await stack.api('/v1/meters', { body: { id, accountId, timezone: 'Europe/London', intervalSeconds: 900, tariffId: 'nem-span' } });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
    };
    // Move-in on 16 May; the meter was read from 1 April (the previous occupant's surplus, stored, never
    // billed), the new occupant exports more than imports until June, then imports.
    await createAccount(stack, 'SP-IN', 'Europe/London', 1);
    await meter('M-SP-IN', 'SP-IN');
    await insertReadings(stack, 'M-SP-IN', APRIL.from, APRIL.intervals + MOVE_IN.intervalsBefore, 100_000, { exportMwh: 900_000 });
    await insertReadings(stack, 'M-SP-IN', MOVE_IN.at, MAY.intervals - MOVE_IN.intervalsBefore, 100_000, { exportMwh: 300_000 });
    await insertReadings(stack, 'M-SP-IN', JUNE.from, JUNE.intervals + JULY.intervals, 300_000, { exportMwh: 100_000 });
    // A meter exchange on 11 June: the old meter banks a surplus from May, misses an hour on 5 June; the
    // new one reads from the exchange on.
    await createAccount(stack, 'SP-EX', 'Europe/London', 1);
    await meter('M-SP-OLD', 'SP-EX');
    await meter('M-SP-NEW', 'SP-EX');
    const toGap = (Date.parse(GAP.from) - Date.parse(MAY.from)) / QUARTER_HOUR_MS;
    const toExchange = (Date.parse(EXCHANGE) - Date.parse(MAY.from)) / QUARTER_HOUR_MS;
    await insertReadings(stack, 'M-SP-OLD', MAY.from, toGap, 100_000, { exportMwh: 300_000 });
    await insertReadings(stack, 'M-SP-OLD', at(GAP.from, GAP.intervals), toExchange - toGap - GAP.intervals, 100_000, { exportMwh: 300_000 });
    await insertReadings(stack, 'M-SP-NEW', EXCHANGE, MAY.intervals + JUNE.intervals + JULY.intervals - toExchange, 200_000, { exportMwh: 100_000 });
    await stack.pool.query(`UPDATE meter_readings SET received_after = NULL, received_at = now() - interval '1 day'`);

    const moveIn = await stack.api('/v1/accounts/SP-IN/move-in', { body: { at: MOVE_IN.at } });
    expect(moveIn.status, JSON.stringify(moveIn.body)).toBe(200);
    const exchange = await stack.api('/v1/meters/M-SP-OLD/exchange', { body: { newMeterId: 'M-SP-NEW', at: EXCHANGE } });
    expect(exchange.status, JSON.stringify(exchange.body)).toBe(200);
    const run = await billingRun(stack, '2026-07-20T00:00:00Z');
    expect(run.body, JSON.stringify(run.body)).toMatchObject({ state: 'finished', failures: [] });
  });
  afterAll(async () => stack?.close());

  const sectionOf = async (billId: string, meterId: string) => {
    const bill = await stack.api(`/v1/bills/${billId}`);
    expect(bill.status, billId).toBe(200);
    return bill.body.meters.find((m: any) => m.meterId === meterId);
  };

  it('carries nothing stored before a move-in into the cycles after the move-in cycle', async () => {
    const may = await sectionOf('SP-IN.2026-05-01', 'M-SP-IN');
    expect(may.inService).toEqual({ from: MOVE_IN.at, to: JUNE.from });
    expect(may.metering.carriedIn).toMatchObject({ banks: [], runningNetKwh: '0', creditBalance: '0' });
    expect(may.metering.carriedOut.banks.length).toBeGreaterThan(0);
    const june = await sectionOf('SP-IN.2026-06-01', 'M-SP-IN');
    expect(june.metering.carriedIn).toEqual(may.metering.carriedOut);
    // The charges endpoint derives the same: its history starts at the service start too.
    const charges = await stack.api(`/v1/meters/M-SP-IN/charges?from=${JUNE.from}&to=${JULY.from}`);
    expect(charges.status, JSON.stringify(charges.body)).toBe(200);
    expect(charges.body.metering.carriedIn).toEqual(may.metering.carriedOut);
    expect(charges.body.total).toBe(june.total);
  });

  it('re-rates late data in the cycle of a service end as the final window it was billed as', async () => {
    const june = await sectionOf('SP-EX.2026-06-01', 'M-SP-OLD');
    expect(june.inService).toEqual({ from: JUNE.from, to: EXCHANGE });
    expect(june.metering).toMatchObject({ trueUp: true, settledBy: 'service_end' });
    expect(june.coverage.estimatedIntervals).toBe(GAP.intervals);
    // The hour arrives late, as the linear estimate had it: nothing to adjust.
    const late = Array.from({ length: GAP.intervals }, (_, k) => ({ meterId: 'M-SP-OLD', intervalStart: Date.parse(GAP.from) + k * QUARTER_HOUR_MS, intervalSeconds: 900, importMwh: 100_000, exportMwh: 300_000 }));
    expect(await ingestReadings(stack, late)).toEqual({ stored: 0, replaced: GAP.intervals });
    const run = await billingRun(stack, '2026-08-20T00:00:00Z');
    expect(run.body, JSON.stringify(run.body)).toMatchObject({ state: 'finished', failures: [] });
    expect(run.body.billIds).toContain('SP-EX.2026-07-01');
    const july = (await stack.api('/v1/bills/SP-EX.2026-07-01')).body;
    expect(july.meters.map((m: any) => m.meterId)).toEqual(['M-SP-NEW']);
    expect(july.adjustments).toEqual([]);
  });
});
