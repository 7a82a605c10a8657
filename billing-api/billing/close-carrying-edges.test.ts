/**
 * Bill close under net metering (a kWh bank, true-up in July) at the edges of a cycle, through the HTTP API
 * against the real stack:
 * - a new version of the tariff takes effect mid-cycle: the cycle closes rated in two parts (each line
 *   naming its version), equals the charges endpoint, and the bank flows on into the next cycle;
 * - the service starts mid-cycle (move-in): the first bill is prorated and starts with nothing carried,
 *   the next one starts from what it carried out;
 * - the service ends mid-cycle (move-out): the last bill is prorated and settles the bank as a true-up.
 */
import Decimal from 'decimal.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageModes } from '../../test/support/database.js';
import { startTestStack, type TestStack } from '../../test/support/stack.js';
import { billingRun, billsOf, createAccount, eveningPeakUrdbRate, insertReadings, lineOf, markReceivedOnTime } from '../test-support.js';

// London, billing day 1, 15-minute intervals (UTC+1 until 25 October).
const MAY = { from: '2026-04-30T23:00:00Z', to: '2026-05-31T23:00:00Z', intervals: 2976 };
const JUNE = { from: '2026-05-31T23:00:00Z', to: '2026-06-30T23:00:00Z', intervals: 2880 };
const SEPTEMBER = { from: '2026-08-31T23:00:00Z', to: '2026-09-30T23:00:00Z', intervals: 2880 };
const OCTOBER = { from: '2026-09-30T23:00:00Z', to: '2026-11-01T00:00:00Z', intervals: 2980 };
const VERSION_2_FROM = '2026-05-15T23:00:00Z'; // 16 May, local midnight
const MOVE_IN = '2026-09-15T23:00:00Z'; // 16 September
const MOVE_OUT = '2026-10-10T23:00:00Z'; // 11 October

const rate = (offPeak: number, peak: number) =>
  eveningPeakUrdbRate({ label: 'nem-edges', name: 'Net metering with a kWh bank', dgrules: 'Net Metering', monthlyCharge: 5, periods: [[{ rate: offPeak, sell: 0.05 }], [{ rate: peak, sell: 0.05 }]] });
const netMetering = { carryOver: 'kWh', trueUpMonth: 7, trueUpSellRate: '0.04' };

describe.each(storageModes())('bill close under net metering at the edges of a cycle (%s storage)', (mode) => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack(mode, { BILLING_CRON: 'off' });
    const first = await stack.api('/v1/tariffs/urdb', { body: { id: 'nem-edges', effectiveFrom: '2026-01-01T00:00:00Z', timezone: 'Europe/London', rate: rate(0.2, 0.3), netMetering } });
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    const meter = async (id: string, accountId: string) => {
      await createAccount(stack, accountId, 'Europe/London', 1);
      const res = await stack.api('/v1/meters', { body: { id, accountId, timezone: 'Europe/London', intervalSeconds: 900, tariffId: 'nem-edges' } });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
    };
    // A new version mid-May: May's first 15 days (version 1) import more than they export, its last 16
    // (version 2) export more (a bank); June imports more.
    await meter('M-VER', 'E-VER');
    await insertReadings(stack, 'M-VER', MAY.from, 1440, 400_000, { exportMwh: 100_000 });
    await insertReadings(stack, 'M-VER', VERSION_2_FROM, MAY.intervals - 1440, 100_000, { exportMwh: 500_000 });
    await insertReadings(stack, 'M-VER', JUNE.from, JUNE.intervals, 500_000, { exportMwh: 100_000 });
    // Move-in on 16 September, read from then on: the second half of September exports, October imports.
    await meter('M-IN', 'E-IN');
    await insertReadings(stack, 'M-IN', MOVE_IN, SEPTEMBER.intervals / 2, 100_000, { exportMwh: 400_000 });
    await insertReadings(stack, 'M-IN', OCTOBER.from, OCTOBER.intervals, 300_000, { exportMwh: 200_000 });
    // Move-out on 11 October: September banks a surplus, October to the move-out exports too.
    await meter('M-OUT', 'E-OUT');
    await insertReadings(stack, 'M-OUT', SEPTEMBER.from, SEPTEMBER.intervals, 100_000, { exportMwh: 300_000 });
    await insertReadings(stack, 'M-OUT', OCTOBER.from, 960, 100_000, { exportMwh: 200_000 });
    await markReceivedOnTime(stack);

    const version2 = await stack.api('/v1/tariffs/urdb', { body: { id: 'nem-edges', effectiveFrom: VERSION_2_FROM, timezone: 'Europe/London', rate: rate(0.25, 0.35), netMetering } });
    expect(version2.status, JSON.stringify(version2.body)).toBe(201);
    for (const [path, at] of [['/v1/accounts/E-IN/move-in', MOVE_IN], ['/v1/accounts/E-OUT/move-out', MOVE_OUT]]) {
      const res = await stack.api(path, { body: { at } });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
    }
  });
  afterAll(async () => stack?.close());

  const chargesOf = async (meterId: string, window: { from: string; to: string }) => {
    const res = await stack.api(`/v1/meters/${meterId}/charges?from=${window.from}&to=${window.to}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body;
  };
  // the bill of an account's cycle, by its id (account and local start of the cycle)
  const meterSection = async (accountId: string, cycleStart: string) => {
    const bill = await stack.api(`/v1/bills/${accountId}.${cycleStart}`);
    expect(bill.status, `${accountId}.${cycleStart}`).toBe(200);
    return bill.body.meters[0];
  };

  it('closes a cycle spanning a new tariff version in two parts, as the charges endpoint rates it, and carries the bank on', async () => {
    const run = await billingRun(stack, '2026-07-05T00:00:00Z');
    expect(run.body, JSON.stringify(run.body)).toMatchObject({ state: 'finished', failures: [] });
    const may = await meterSection('E-VER', '2026-05-01');
    const charges = await chargesOf('M-VER', MAY);
    expect(may.lines).toEqual(charges.lines);
    expect(may.total).toBe(charges.total);
    expect(may.metering).toEqual(charges.metering);
    // Every line names its version's tariff; both versions' prices are billed, and both versions are listed.
    expect(may.tariffVersions.map((v: any) => v.version)).toEqual([1, 2]);
    // May's deficit is its first part's, billed at version 1's prices (0.2 off-peak, 0.3 peak).
    expect(new Set(lineOf(may.lines, 'energy').map((l: any) => l.rate))).toEqual(new Set(['0.2', '0.3']));
    expect(may.pieces.map((p: any) => p.from)).toEqual([MAY.from, VERSION_2_FROM]);
    // Fixed charges: 15 and 16 of May's 31 days.
    expect(lineOf(may.lines, 'fixed').map((l: any) => l.amount)).toEqual(['2.42', '2.58']);
    const total = may.lines.reduce((sum: Decimal, l: any) => sum.plus(l.amount), new Decimal(0));
    expect(total.toFixed(2)).toBe(may.total);
    // Each part nets on its own, the second from what the first carried out; the second banks a surplus.
    const [first, second] = may.metering.parts;
    expect([first.from, first.to, second.to]).toEqual([MAY.from, VERSION_2_FROM, MAY.to]);
    expect(second.carriedIn).toEqual(first.carriedOut);
    expect(first.periods.map((p: any) => p.billedKwh)).not.toContain('0');
    expect(second.carriedOut.banks.length).toBeGreaterThan(0);
    expect(may.metering).toMatchObject({ carriedIn: first.carriedIn, carriedOut: second.carriedOut, trueUp: false });
    // June starts from the bank May carried out, applies it, and equals its charges (version 2's prices).
    const june = await meterSection('E-VER', '2026-06-01');
    expect(june.metering.carriedIn).toEqual(may.metering.carriedOut);
    expect(june.metering.periods.map((p: any) => p.bankInKwh)).not.toContain('0');
    expect(new Set(lineOf(june.lines, 'energy').map((l: any) => l.rate))).toEqual(new Set(['0.25', '0.35']));
    const juneCharges = await chargesOf('M-VER', JUNE);
    expect(june.lines).toEqual(juneCharges.lines);
    expect(june.metering).toEqual(juneCharges.metering);
  });

  it('bills a move-in cycle prorated and with nothing carried in; the next cycle starts from what it carried out', async () => {
    const run = await billingRun(stack, '2026-11-20T00:00:00Z');
    expect(run.body.state, JSON.stringify(run.body)).toBe('finished');
    expect(run.body.failures.filter((f: any) => f.accountId !== 'E-VER')).toEqual([]);
    const september = await meterSection('E-IN', '2026-09-01');
    expect(september.inService).toEqual({ from: MOVE_IN, to: SEPTEMBER.to });
    expect(lineOf(september.lines, 'fixed').map((l: any) => l.amount)).toEqual(['2.50']); // 15 of 30 days
    expect(september.metering.carriedIn).toMatchObject({ banks: [], runningNetKwh: '0', creditBalance: '0' });
    expect(september.metering.carriedOut.banks.length).toBeGreaterThan(0);
    const october = await meterSection('E-IN', '2026-10-01');
    expect(october.metering.carriedIn).toEqual(september.metering.carriedOut);
    const charges = await chargesOf('M-IN', OCTOBER);
    expect(october.lines).toEqual(charges.lines);
    expect(october.metering).toEqual(charges.metering);
  });

  it('bills a move-out cycle prorated, settles the bank on it as a true-up, and bills nothing after', async () => {
    const september = await meterSection('E-OUT', '2026-09-01');
    expect(september.metering.carriedOut.banks.length).toBeGreaterThan(0);
    const october = await meterSection('E-OUT', '2026-10-01');
    expect(october.inService).toEqual({ from: OCTOBER.from, to: MOVE_OUT });
    expect(lineOf(october.lines, 'fixed').map((l: any) => l.amount)).toEqual(['1.61']); // 10 of 31 days
    expect(october.metering).toMatchObject({ trueUp: true, settledBy: 'service_end', carriedIn: september.metering.carriedOut });
    expect(october.metering.carriedOut).toMatchObject({ banks: [], runningNetKwh: '0', creditBalance: '0' });
    // The running net surplus since the last true-up (July) is paid at the true-up sell rate.
    const trueUp: any = lineOf(october.lines, 'export_credit').find((l: any) => l.period === 'trueup');
    expect(trueUp).toMatchObject({ quantity: october.metering.trueUpKwh, rate: '0.04' });
    expect(trueUp.amount).toBe(new Decimal(october.metering.trueUpKwh).mul('0.04').neg().toFixed(2));
    expect(new Decimal(october.metering.trueUpKwh).gt(0)).toBe(true);
    expect((await billsOf(stack, 'E-OUT')).length).toBe(2);
  });
});
