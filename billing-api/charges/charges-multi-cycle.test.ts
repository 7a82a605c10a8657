/**
 * The charges of a window spanning several billing cycles under a carrying mode (a kWh bank, a net
 * metering money balance, a net billing balance), through the HTTP API against the real stack: a year
 * window totals what its twelve monthly windows total, and what the two half years total, to the cent; it
 * settles once and carries out what December carries out; and the year's closed bills total the same.
 */
import Decimal from 'decimal.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageModes } from '../../test/support/database.js';
import { startTestStack, type TestStack } from '../../test/support/stack.js';
import { billingRun, billsOf, createAccount, eveningPeakUrdbRate, insertReadings, markReceivedOnTime } from '../test-support.js';

// UTC, billing day 1: the calendar months of 2025, hourly intervals.
const MONTHS = Array.from({ length: 12 }, (_, k) => ({
  from: new Date(Date.UTC(2025, k, 1)).toISOString(),
  to: new Date(Date.UTC(2025, k + 1, 1)).toISOString(),
  hours: (Date.UTC(2025, k + 1, 1) - Date.UTC(2025, k, 1)) / 3_600_000,
}));
const YEAR = { from: MONTHS[0].from, to: MONTHS[11].to };
const JULY = MONTHS[6].from;
// Per hour, in the readings' unit (1_000_000 = 1 kWh): June to August export more than they import, enough
// for a surplus left at the December true-up.
const flowOf = (k: number) => (k >= 5 && k <= 7 ? { importMwh: 150_000 + 10_000 * k, exportMwh: 1_200_000 + 7_000 * k } : { importMwh: 200_000 + 2_000 * k, exportMwh: 60_000 + 3_000 * k });

const MODES = [
  { key: 'KWH', name: 'a kWh bank', dgrules: 'Net Metering', options: { netMetering: { carryOver: 'kWh', trueUpMonth: 12, trueUpSellRate: '0.04' } } },
  { key: 'NMD', name: 'a net metering money balance', dgrules: 'Net Metering', options: { netMetering: { carryOver: 'dollars', trueUpMonth: 12 } } },
  { key: 'NBD', name: 'a net billing balance', dgrules: 'Net Billing Instantaneous', options: { netBilling: { carryOver: 'dollars', trueUpMonth: 12 } } },
];

const rate = (dgrules: string) =>
  eveningPeakUrdbRate({ label: `multi-${dgrules}`, name: 'Two periods with a monthly charge', dgrules, monthlyCharge: 7.5, periods: [[{ rate: 0.1731, sell: 0.0613 }], [{ rate: 0.2917, sell: 0.0877 }]] });

const sum = (totals: string[]) => totals.reduce((s, t) => s.plus(t), new Decimal(0)).toFixed(2);
const trueUps = (lines: any[]) => lines.filter((l) => l.type === 'export_credit' && l.period === 'trueup');

describe.each(storageModes())('charges of a window spanning billing cycles under a carrying mode (%s storage)', (mode) => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack(mode, { BILLING_CRON: 'off' });
    for (const m of MODES) {
      const tariff = await stack.api('/v1/tariffs/urdb', { body: { id: `multi-${m.key.toLowerCase()}`, timezone: 'UTC', rate: rate(m.dgrules), ...m.options } });
      expect(tariff.status, JSON.stringify(tariff.body)).toBe(201);
      await createAccount(stack, `MC-${m.key}`, 'UTC', 1);
      const meter = await stack.api('/v1/meters', { body: { id: `M-MC-${m.key}`, accountId: `MC-${m.key}`, timezone: 'UTC', intervalSeconds: 3600, tariffId: tariff.body.id } });
      expect(meter.status, JSON.stringify(meter.body)).toBe(201);
      for (let k = 0; k < 12; k++) await insertReadings(stack, `M-MC-${m.key}`, MONTHS[k].from, MONTHS[k].hours, flowOf(k).importMwh, { intervalSeconds: 3600, exportMwh: flowOf(k).exportMwh });
    }
    await markReceivedOnTime(stack);
  });
  afterAll(async () => stack?.close());

  const charges = async (meterId: string, from: string, to: string) => {
    const res = await stack.api(`/v1/meters/${meterId}/charges?from=${from}&to=${to}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body;
  };

  describe.each(MODES)('$name', (m) => {
    const meterId = `M-MC-${m.key}`;

    it('a year window totals what the monthly windows and the half years total, settles once and carries out what December does', async () => {
      const year = await charges(meterId, YEAR.from, YEAR.to);
      const months = [];
      for (const month of MONTHS) months.push(await charges(meterId, month.from, month.to));
      const halves = [await charges(meterId, YEAR.from, JULY), await charges(meterId, JULY, YEAR.to)];

      expect(year.total).toBe(sum(months.map((c) => c.total)));
      expect(year.total).toBe(sum(halves.map((c) => c.total)));
      expect(trueUps(year.lines)).toHaveLength(1);
      expect(trueUps(year.lines)).toEqual(trueUps(months[11].lines));
      expect(months.slice(0, 11).flatMap((c) => trueUps(c.lines))).toEqual([]);
      expect(year.metering.carriedOut).toEqual(months[11].metering.carriedOut);
      expect(halves[1].metering.carriedOut).toEqual(months[11].metering.carriedOut);
      expect(halves[1].metering.carriedIn).toEqual(months[6].metering.carriedIn);
      expect(year.metering.parts.map((p: any) => Date.parse(p.from))).toEqual(MONTHS.map((c) => Date.parse(c.from)));
      // the summer surplus is carried into the autumn, not netted against the winter before it
      expect(months[8].metering.carriedIn).not.toEqual(months[0].metering.carriedIn);
    });
  });

  it("the year's closed bills total what the year's charges do", async () => {
    const run = await billingRun(stack, '2026-01-05T00:00:00Z');
    expect(run.body).toMatchObject({ state: 'finished', failures: [], failureCount: 0 });
    for (const m of MODES) {
      const year = await charges(`M-MC-${m.key}`, YEAR.from, YEAR.to);
      const bills = (await billsOf(stack, `MC-${m.key}`)).filter((b: any) => Date.parse(b.cycle.from) >= Date.parse(YEAR.from) && Date.parse(b.cycle.to) <= Date.parse(YEAR.to));
      expect(bills, m.key).toHaveLength(12);
      const totals = [];
      for (const bill of bills) totals.push((await stack.api(`/v1/bills/${bill.id}`)).body.meters[0].total);
      expect(sum(totals), m.key).toBe(year.total);
    }
  });
});
