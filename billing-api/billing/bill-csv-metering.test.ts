/**
 * The bill's CSV under net metering (a kWh bank, true-up in July), through the HTTP API against the real
 * stack: after the charge lines and adjustments, rows state per period the bank carried in, import,
 * export, billed, surplus and carried out, and the running net, as the bill's JSON metering section does;
 * each cycle's carried-in rows are the previous cycle's carried-out rows; an adjustment for late data
 * states the corrected cycle's carry-out as billed and as re-rated.
 */
import Decimal from 'decimal.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageModes } from '../../test/support/database.js';
import { startTestStack, type TestStack } from '../../test/support/stack.js';
import { billingRun, createAccount, eveningPeakUrdbRate, insertReadings, markReceivedOnTime } from '../test-support.js';

// London, billing day 1: the cycles of May to August 2026 (UTC+1), 15-minute intervals.
const CYCLES = [
  { id: 'CSVNEM.2026-05-01', from: '2026-04-30T23:00:00Z', intervals: 2976 },
  { id: 'CSVNEM.2026-06-01', from: '2026-05-31T23:00:00Z', intervals: 2880 },
  { id: 'CSVNEM.2026-07-01', from: '2026-06-30T23:00:00Z', intervals: 2976 },
  { id: 'CSVNEM.2026-08-01', from: '2026-07-31T23:00:00Z', intervals: 2976 },
];
// Per interval, in the readings' unit (1_000_000 = 1 kWh): May and July export more than they import.
const FLOWS = [
  { importMwh: 250_000, exportMwh: 500_000 },
  { importMwh: 500_000, exportMwh: 100_000 },
  { importMwh: 100_000, exportMwh: 300_000 },
  { importMwh: 400_000, exportMwh: 100_000 },
];
// May's first week is not read until after May is billed (late data).
const LATE_MAY = { from: '2026-04-30T23:00:00Z', intervals: 7 * 96 };

type Row = Record<string, string>;

describe.each(storageModes())('bill CSV under net metering (%s storage)', (mode) => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack(mode, { BILLING_CRON: 'off' });
    const rate = eveningPeakUrdbRate({ label: 'csv-nem-bank', name: 'Net metering with a kWh bank', dgrules: 'Net Metering', monthlyCharge: 5, periods: [[{ rate: 0.2, sell: 0.05 }], [{ rate: 0.3, sell: 0.05 }]] });
    const tariff = await stack.api('/v1/tariffs/urdb', { body: { timezone: 'Europe/London', rate, netMetering: { carryOver: 'kWh', trueUpMonth: 7, trueUpSellRate: '0.04' } } });
    expect(tariff.status, JSON.stringify(tariff.body)).toBe(201);
    await createAccount(stack, 'CSVNEM', 'Europe/London', 1);
    expect((await stack.api('/v1/meters', { body: { id: 'M-CSVNEM', accountId: 'CSVNEM', timezone: 'Europe/London', intervalSeconds: 900, tariffId: 'csv-nem-bank' } })).status).toBe(201);
    await insertReadings(stack, 'M-CSVNEM', '2026-05-07T23:00:00Z', CYCLES[0].intervals - LATE_MAY.intervals, FLOWS[0].importMwh, { exportMwh: FLOWS[0].exportMwh });
    for (let k = 1; k < CYCLES.length; k++) await insertReadings(stack, 'M-CSVNEM', CYCLES[k].from, CYCLES[k].intervals, FLOWS[k].importMwh, { exportMwh: FLOWS[k].exportMwh });
    // These readings arrived on time, a day before any close (only May's first week will be late data).
    await markReceivedOnTime(stack, 'M-CSVNEM');
  });
  afterAll(async () => stack?.close());

  const csvOf = async (billId: string): Promise<Row[]> => {
    const res = await stack.api(`/v1/bills/${billId}/lines.csv`);
    expect(res.status).toBe(200);
    expect((await stack.api(`/v1/bills/${billId}?format=csv`)).body).toBe(res.body);
    const [head, ...rows] = (res.body as string).trimEnd().split('\r\n').map((r) => r.split(','));
    return rows.map((r) => Object.fromEntries(head.map((c, i) => [c, r[i]])));
  };
  const quantity = (rows: Row[], type: string, name: string, period = '') => {
    const found = rows.filter((r) => r.type === type && r.name === name && r.period === period);
    expect(found, `${type} ${name} ${period}`).toHaveLength(1);
    return new Decimal(found[0].quantity);
  };
  const banked = (state: any, period: string) => state.banks.filter((b: any) => b.period === period).reduce((s: Decimal, b: any) => s.plus(b.kWh), new Decimal(0));

  it('states the bank per period and the running net as the JSON metering section, each cycle carrying in what the one before carried out', async () => {
    const run = await billingRun(stack, '2026-08-05T00:00:00Z');
    expect(run.body).toMatchObject({ state: 'finished', billsCreated: 3, failures: [] });
    let previous: Row[] | null = null;
    for (let k = 0; k < 3; k++) {
      const bill = (await stack.api(`/v1/bills/${CYCLES[k].id}`)).body;
      const [meter] = bill.meters;
      const rows = await csvOf(CYCLES[k].id);
      // The charge lines come first as before; the amount column sums to the bill's total.
      expect(rows.slice(0, meter.lines.length).map((r) => r.type)).toEqual(meter.lines.map((l: any) => l.type));
      expect(rows.reduce((sum, r) => sum.plus(r.amount || 0), new Decimal(0)).toFixed(2)).toBe(bill.total);
      const metering = rows.slice(meter.lines.length);
      expect(metering.every((r) => r.meter_id === 'M-CSVNEM' && r.amount === '' && r.bill_id === CYCLES[k].id)).toBe(true);
      expect(metering[0]).toMatchObject({ type: 'metering', name: 'net_metering', unit: 'kWh', period: k === 2 ? 'trueup' : '' });
      expect(meter.metering.periods.length).toBeGreaterThan(0);
      for (const p of meter.metering.periods) {
        const q = (name: string) => quantity(metering, 'bank', name, p.period);
        expect([q('carried_in'), q('import'), q('export'), q('billed'), q('surplus'), q('dropped')].map(String), `${CYCLES[k].id} ${p.period}`).toEqual(
          [p.bankInKwh, p.importKwh, p.exportKwh, p.billedKwh, p.surplusKwh, p.droppedKwh].map((v) => new Decimal(v).toString()),
        );
        expect(q('carried_out').eq(banked(meter.metering.carriedOut, p.period))).toBe(true);
        expect(q('carried_in').plus(q('export')).minus(q('import')).plus(q('billed')).eq(q('surplus'))).toBe(true);
        if (previous) expect(q('carried_in').eq(quantity(previous, 'bank', 'carried_out', p.period)), `${CYCLES[k].id} ${p.period}`).toBe(true);
      }
      expect(quantity(metering, 'running_net', 'carried_in').eq(meter.metering.carriedIn.runningNetKwh)).toBe(true);
      expect(quantity(metering, 'running_net', 'carried_out').eq(meter.metering.carriedOut.runningNetKwh)).toBe(true);
      if (previous) expect(quantity(metering, 'running_net', 'carried_in').eq(quantity(previous, 'running_net', 'carried_out'))).toBe(true);
      previous = metering;
    }
    // May banks a surplus, June applies it; July settles the running net at the true-up and carries nothing out.
    expect(quantity((await csvOf(CYCLES[1].id)), 'bank', 'carried_in', 'p0').gt(0)).toBe(true);
    const july = await csvOf(CYCLES[2].id);
    expect(quantity(july, 'running_net', 'trueup').eq((await stack.api(`/v1/bills/${CYCLES[2].id}`)).body.meters[0].metering.trueUpKwh)).toBe(true);
    expect(july.filter((r) => r.type === 'bank' && r.name === 'carried_out').every((r) => new Decimal(r.quantity).isZero())).toBe(true);
  });

  it("states beside a late-data adjustment what the corrected cycle carried out, as billed and as re-rated", async () => {
    await insertReadings(stack, 'M-CSVNEM', LATE_MAY.from, LATE_MAY.intervals, FLOWS[0].importMwh, { exportMwh: FLOWS[0].exportMwh });
    const run = await billingRun(stack, '2026-09-05T00:00:00Z');
    expect(run.body).toMatchObject({ state: 'finished', billIds: [CYCLES[3].id], failures: [] });
    const august = (await stack.api(`/v1/bills/${CYCLES[3].id}`)).body;
    const may = august.adjustments.find((a: any) => a.correctsBillId === CYCLES[0].id);
    expect(may.carriedOut.changed).toBe(true);
    const rows = (await csvOf(CYCLES[3].id)).filter((r) => r.corrects_bill_id === CYCLES[0].id && r.type !== 'adjustment');
    expect(rows.every((r) => r.meter_id === 'M-CSVNEM' && r.corrected_from === may.period.from && r.corrected_to === may.period.to && r.amount === '')).toBe(true);
    for (const [name, state] of [['carried_out_billed', may.carriedOut.billed], ['carried_out_rerated', may.carriedOut.rerated]] as const) {
      expect(rows.filter((r) => r.type === 'bank' && r.name === name).map((r) => [r.period, r.quantity])).toEqual(state.banks.map((b: any) => [b.period, b.kWh]));
      expect(quantity(rows, 'running_net', name).eq(state.runningNetKwh)).toBe(true);
    }
    // The late week's surplus is in the re-rated carry-out, not in what was billed.
    expect(quantity(rows, 'running_net', 'carried_out_rerated').gt(quantity(rows, 'running_net', 'carried_out_billed'))).toBe(true);
  });
});
