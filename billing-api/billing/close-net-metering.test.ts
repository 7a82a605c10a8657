/**
 * Bill close under net metering (a kWh bank, true-up in July), through the HTTP API against the real
 * stack: each cycle closes with what the earlier cycles carried into it, its bill equals the charges
 * endpoint for the same window, states the bank carried in and out, and the next bill starts from what
 * the previous one carried out. Late data for a closed cycle is re-rated with its history and the
 * adjustment says when it changed what the cycle carried out.
 */
import Decimal from 'decimal.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageModes } from '../../test/support/database.js';
import { startTestStack, type TestStack } from '../../test/support/stack.js';
import { billingRun, createAccount, eveningPeakUrdbRate, insertReadings, lineOf, markReceivedOnTime } from '../test-support.js';

// London, billing day 1: the cycles of May to September 2026 (UTC+1), 15-minute intervals.
const CYCLES = [
  { id: 'NEM.2026-05-01', from: '2026-04-30T23:00:00Z', to: '2026-05-31T23:00:00Z', intervals: 2976 },
  { id: 'NEM.2026-06-01', from: '2026-05-31T23:00:00Z', to: '2026-06-30T23:00:00Z', intervals: 2880 },
  { id: 'NEM.2026-07-01', from: '2026-06-30T23:00:00Z', to: '2026-07-31T23:00:00Z', intervals: 2976 },
  { id: 'NEM.2026-08-01', from: '2026-07-31T23:00:00Z', to: '2026-08-31T23:00:00Z', intervals: 2976 },
  { id: 'NEM.2026-09-01', from: '2026-08-31T23:00:00Z', to: '2026-09-30T23:00:00Z', intervals: 2880 },
];
// Per interval, in the readings' unit (1_000_000 = 1 kWh): May and July export more than they import.
const FLOWS = [
  { importMwh: 250_000, exportMwh: 500_000 },
  { importMwh: 500_000, exportMwh: 100_000 },
  { importMwh: 100_000, exportMwh: 300_000 },
  { importMwh: 400_000, exportMwh: 100_000 },
  { importMwh: 300_000, exportMwh: 200_000 },
];
// May's first week is not read until after May is billed (late data).
const LATE_MAY = { from: '2026-04-30T23:00:00Z', intervals: 7 * 96 };

describe.each(storageModes())('bill close under net metering (%s storage)', (mode) => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack(mode, { BILLING_CRON: 'off' });
    const rate = eveningPeakUrdbRate({ label: 'nem-bank', name: 'Net metering with a kWh bank', dgrules: 'Net Metering', monthlyCharge: 5, periods: [[{ rate: 0.2, sell: 0.05 }], [{ rate: 0.3, sell: 0.05 }]] });
    const tariff = await stack.api('/v1/tariffs/urdb', { body: { timezone: 'Europe/London', rate, netMetering: { carryOver: 'kWh', trueUpMonth: 7, trueUpSellRate: '0.04' } } });
    expect(tariff.status, JSON.stringify(tariff.body)).toBe(201);
    await createAccount(stack, 'NEM', 'Europe/London', 1);
    expect((await stack.api('/v1/meters', { body: { id: 'M-NEM', accountId: 'NEM', timezone: 'Europe/London', intervalSeconds: 900, tariffId: 'nem-bank' } })).status).toBe(201);
    await insertReadings(stack, 'M-NEM', '2026-05-07T23:00:00Z', CYCLES[0].intervals - LATE_MAY.intervals, FLOWS[0].importMwh, { exportMwh: FLOWS[0].exportMwh });
    for (let k = 1; k < CYCLES.length; k++) await insertReadings(stack, 'M-NEM', CYCLES[k].from, CYCLES[k].intervals, FLOWS[k].importMwh, { exportMwh: FLOWS[k].exportMwh });
    // These readings arrived on time, a day before any close (only May's first week will be late data).
    await markReceivedOnTime(stack, 'M-NEM');
  });
  afterAll(async () => stack?.close());

  const chargesOf = async (k: number) => {
    const res = await stack.api(`/v1/meters/M-NEM/charges?from=${CYCLES[k].from}&to=${CYCLES[k].to}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body;
  };

  it('closes every cycle with what the earlier ones carried, as the charges endpoint rates it, each starting from the previous carry-out', async () => {
    const run = await billingRun(stack, '2026-09-05T00:00:00Z');
    expect(run.body).toMatchObject({ state: 'finished', billsCreated: 4, failures: [], failureCount: 0 });
    const sections = [];
    for (let k = 0; k < 4; k++) {
      const bill = (await stack.api(`/v1/bills/${CYCLES[k].id}`)).body;
      const [meter] = bill.meters;
      const charges = await chargesOf(k);
      expect(meter.lines, CYCLES[k].id).toEqual(charges.lines);
      expect(meter.total, CYCLES[k].id).toBe(charges.total);
      expect(meter.metering, CYCLES[k].id).toEqual(charges.metering);
      expect(meter.metering).toMatchObject({ mode: 'net_metering', carryOver: 'kWh', trueUp: k === 2 });
      sections.push(meter);
    }
    // The first cycle of the tariff starts from nothing; each later one from what the one before carried out.
    expect(sections[0].metering.carriedIn).toMatchObject({ banks: [], runningNetKwh: '0', creditBalance: '0' });
    for (let k = 1; k < sections.length; k++) expect(sections[k].metering.carriedIn, CYCLES[k].id).toEqual(sections[k - 1].metering.carriedOut);
    // May exports more than it imports: it banks a surplus that June applies.
    expect(sections[0].metering.carriedOut.banks.length).toBeGreaterThan(0);
    expect(sections[0].metering.carriedOut).not.toEqual(sections[0].metering.carriedIn);
    // July settles the year: its true-up line, and nothing banked after it.
    expect(lineOf(sections[2].lines, 'export_credit').map((l: any) => l.period)).toContain('trueup');
    expect(sections[2].metering.carriedOut.banks).toEqual([]);
  });

  it("re-rates a closed cycle's late data with its history and says that what it carried out changed", async () => {
    const before = (await stack.api(`/v1/bills/${CYCLES[0].id}`)).body;
    await insertReadings(stack, 'M-NEM', LATE_MAY.from, LATE_MAY.intervals, FLOWS[0].importMwh, { exportMwh: FLOWS[0].exportMwh });
    const run = await billingRun(stack, '2026-10-05T00:00:00Z');
    expect(run.body).toMatchObject({ state: 'finished', billsCreated: 1, billIds: [CYCLES[4].id], failures: [] });
    const september = (await stack.api(`/v1/bills/${CYCLES[4].id}`)).body;
    const may = september.adjustments.find((a: any) => a.correctsBillId === CYCLES[0].id);
    const rerated = await chargesOf(0);
    expect(may).toMatchObject({ meterId: 'M-NEM', previouslyBilled: before.meters[0].total, rerated: { total: rerated.total } });
    expect(may.carriedOut).toEqual({ billed: before.meters[0].metering.carriedOut, rerated: rerated.metering.carriedOut, changed: true });
    // September starts from what the data stored now carries into it, as the charges endpoint rates it.
    const charges = await chargesOf(4);
    expect(september.meters[0].metering).toEqual(charges.metering);
    expect(september.meters[0].total).toBe(charges.total);
    // What was billed for each closed cycle plus its adjustments equals a re-rating of the data stored now:
    // May's changed carry-over flows into June's re-rating (June, with no late data of its own, applied the
    // bank May carried out).
    for (let k = 0; k < 4; k++) {
      const billed = (await stack.api(`/v1/bills/${CYCLES[k].id}`)).body.meters[0].total;
      const adjusted = september.adjustments.filter((a: any) => a.correctsBillId === CYCLES[k].id).reduce((sum: Decimal, a: any) => sum.plus(a.amount), new Decimal(billed));
      expect(adjusted.toFixed(2), CYCLES[k].id).toBe(new Decimal((await chargesOf(k)).total).toFixed(2));
    }
    expect(september.adjustments.map((a: any) => a.correctsBillId)).toContain(CYCLES[1].id);
    // The closed bill itself is untouched.
    expect((await stack.api(`/v1/bills/${CYCLES[0].id}`)).body).toEqual(before);
  });
});
