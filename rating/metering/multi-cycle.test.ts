/**
 * A window spanning several billing cycles under a carrying mode: rated as its part of each cycle, in
 * sequence, and combined as the parts of a tariff change are, so that its charges are what the bills of
 * its cycles say.
 */
import { describe, expect, it } from 'vitest';
import type { ChargeLine } from '../lines.js';
import { Dec } from '../money.js';
import type { TariffDocument } from '../tariff.schema.js';
import type { TariffTimelineEntry } from '../timeline.js';
import { local } from '../test-support.js';
import { peakDemandKw } from '../rate.js';
import { type MeteredCharges, type MeteredWindowInput, rateMeteredWindows } from './billing-windows.js';
import { months, reading, touTariff, ZONE } from './test-tariffs.js';

const taxed: TariffDocument = { ...touTariff, taxes: [{ name: 'Sales tax', rate: '0.0725' }] };
const documents: Record<string, TariffDocument> = {
  'kWh bank': { ...taxed, id: 'bank', netMetering: { trueUpSellRate: '0.05' } },
  'net metering money balance': { ...taxed, id: 'money', netMetering: { carryOver: 'dollars' } },
  'net billing balance': { ...taxed, id: 'billing', netBilling: { carryOver: 'dollars' } },
};
const timelineOf = (tariff: TariffDocument): TariffTimelineEntry[] => [{ from: Number.MIN_SAFE_INTEGER, tariff }];

/** A year of readings: imports every month, a large surplus in the summer afternoons. */
const year = Array.from({ length: 12 }, (_, k) => {
  const month = String(k + 1).padStart(2, '0');
  const summer = k + 1 >= 6 && k + 1 <= 9;
  return [
    reading(ZONE, `2018-${month}-10T02:00`, 40 + 3 * k, 0),
    reading(ZONE, `2018-${month}-10T16:00`, 7, summer ? 180 + 11 * k : 4),
    reading(ZONE, `2018-${month}-11T18:00`, 23 + k, summer ? 37 : 0),
    reading(ZONE, `2018-${month}-20T12:30`, 3.5, 1.25),
  ];
}).flat();
const monthly = months(ZONE, 2018, 1, 12);
const cycles = monthly.map((m) => m.billingCycle);
const yearWindow = { from: monthly[0].window.from, to: monthly[11].window.to };
const july = monthly[6].window.from;

const rate = (tariff: TariffDocument, windows: MeteredWindowInput[]) => rateMeteredWindows({ tariffTimeline: timelineOf(tariff), intervals: year, meterIntervalSeconds: 3600, windows });
const sum = (charges: MeteredCharges[], field: 'total' | 'subtotal' | 'taxes') => charges.reduce((s, c) => s.plus(c[field]), new Dec(0)).toFixed(2);
const trueUps = (lines: ChargeLine[]) => lines.filter((l) => l.type === 'export_credit' && l.period === 'trueup');
const notTax = (lines: ChargeLine[]) => lines.filter((l) => l.type !== 'tax');

describe.each(Object.entries(documents))('a year window under a %s', (_, tariff) => {
  const months12 = rate(tariff, monthly);
  const [whole] = rate(tariff, [{ window: yearWindow, billingCycles: cycles }]);

  it('given without its cycles, is one bill netted over the year, unlike the bills of its months', () => {
    const [oneBill] = rate(tariff, [{ window: yearWindow }]);
    expect(oneBill.total).not.toBe(sum(months12, 'total'));
    expect(oneBill.metering.parts).toBeUndefined();
  });

  it('totals exactly what the twelve monthly bills total, with their lines in order and the taxes of each bill', () => {
    expect(whole.total).toBe(sum(months12, 'total'));
    expect(whole.subtotal).toBe(sum(months12, 'subtotal'));
    expect(whole.taxes).toBe(sum(months12, 'taxes'));
    expect(notTax(whole.lines)).toEqual(months12.flatMap((m) => notTax(m.lines)));
    expect(whole.lines.filter((l) => l.type === 'tax')).toHaveLength(1);
    expect(whole.pieces).toEqual(months12.flatMap((m) => m.pieces));
  });

  it('settles once, in December, and carries out what December carries out', () => {
    expect(trueUps(whole.lines)).toEqual(months12.flatMap((m) => trueUps(m.lines)));
    expect(trueUps(whole.lines)).toHaveLength(1);
    expect(whole.metering.trueUp).toBe(true);
    expect(whole.metering.carriedOut).toEqual(months12[11].metering.carriedOut);
    expect(whole.metering.carriedIn).toEqual(months12[0].metering.carriedIn);
    expect(whole.metering.parts!.map((p) => [Date.parse(p.from), p.trueUp])).toEqual(monthly.map((m, k) => [m.window.from, k === 11]));
  });

  it('equals the sum of two half-year windows rated in sequence', () => {
    const halves = rate(tariff, [
      { window: { from: yearWindow.from, to: july }, billingCycles: cycles.slice(0, 6) },
      { window: { from: july, to: yearWindow.to }, billingCycles: cycles.slice(6) },
    ]);
    expect(sum(halves, 'total')).toBe(whole.total);
    expect(halves[0].total).toBe(sum(months12.slice(0, 6), 'total'));
    expect(halves[1].metering.carriedIn).toEqual(months12[6].metering.carriedIn);
    expect(halves[1].metering.carriedOut).toEqual(whole.metering.carriedOut);
  });
});

describe('partial cycles at the ends of a window', () => {
  // true-up in March, so a cycle closed early would settle in the middle of the window's last cycle
  const tariff: TariffDocument = { ...touTariff, id: 'march', netMetering: { trueUpSellRate: '0.05', trueUpMonth: 3 } };
  const [jan, feb, mar] = monthly;
  const jan15 = local(ZONE, '2018-01-15T00:00');
  const mar10 = local(ZONE, '2018-03-10T00:00');
  // a February surplus, paid at the March true-up
  const intervals = [...year, reading(ZONE, '2018-02-12T03:00', 0, 400)];
  const run = (windows: MeteredWindowInput[]) => rateMeteredWindows({ tariffTimeline: timelineOf(tariff), intervals, meterIntervalSeconds: 3600, windows });
  const byMonth = run([jan, feb, mar]);
  const split = run([
    { window: { from: jan.window.from, to: jan15 }, billingCycle: jan.billingCycle },
    { window: { from: jan15, to: mar10 }, billingCycles: [jan.billingCycle, feb.billingCycle, mar.billingCycle] },
    { window: { from: mar10, to: mar.window.to }, billingCycle: mar.billingCycle },
  ]);

  it('rates the first part as the next window of its cycle and leaves the last part open: the same bills', () => {
    expect(sum(split, 'subtotal')).toBe(sum(byMonth, 'subtotal'));
    expect(split[1].metering.trueUp).toBe(false);
    expect(trueUps(split[1].lines)).toEqual([]);
    expect(trueUps(split[2].lines)).toEqual(trueUps(byMonth[2].lines));
    expect(trueUps(byMonth[2].lines)).toHaveLength(1);
    expect(split[2].metering.carriedOut).toEqual(byMonth[2].metering.carriedOut);
  });

  it('prorates the fixed charge of each partial cycle by its days in the cycle', () => {
    const fixed = split[1].lines.filter((l) => l.type === 'fixed').map((l) => l.amount);
    expect(fixed).toEqual(['2.74', '5.00', '1.45']); // 17 of 31 days, February whole, 9 of 31 days
  });
});

describe('a window across a tariff change and several cycles', () => {
  const nm: TariffDocument = { ...documents['kWh bank'], effectiveFrom: '2017-01-01T00:00:00-07:00' };
  const mid = local(ZONE, '2018-05-15T00:00');
  const version2: TariffDocument = { ...nm, effectiveFrom: '2018-05-15T00:00:00-07:00', fixedCharges: [{ name: 'Customer charge', amount: '6', per: 'month' }] };
  const tariffTimeline: TariffTimelineEntry[] = [
    { from: Number.MIN_SAFE_INTEGER, tariff: nm },
    { from: mid, tariff: version2 },
  ];
  const run = (windows: MeteredWindowInput[]) => rateMeteredWindows({ tariffTimeline, intervals: year, meterIntervalSeconds: 3600, windows });

  it('splits at the cycles and at the change, with the taxes of each bill', () => {
    const byMonth = run(monthly);
    const [whole] = run([{ window: yearWindow, billingCycles: cycles }]);
    expect(whole.total).toBe(sum(byMonth, 'total'));
    expect(whole.metering.parts).toHaveLength(13);
    expect(whole.metering.carriedOut).toEqual(byMonth[11].metering.carriedOut);
    expect(notTax(whole.lines)).toEqual(byMonth.flatMap((m) => notTax(m.lines)));
  });
});

describe('a window of several cycles under a carrying mode with a demand ratchet', () => {
  const tariff: TariffDocument = {
    ...documents['kWh bank'],
    id: 'ratchet',
    demand: { flat: [{ id: 'p0', seasons: ['summer', 'winter'], tiers: [{ rate: '10' }] }] },
    billingDemand: { lookbackPercent: '0.8', lookbackHorizonMonths: 11 },
  };
  // a March peak of 300 kW sets the billing demand of the months after it
  const intervals = [...year, reading(ZONE, '2018-03-05T09:00', 300, 0)];
  const run = (windows: MeteredWindowInput[]) => rateMeteredWindows({ tariffTimeline: timelineOf(tariff), intervals, meterIntervalSeconds: 3600, windows });
  const peaks = cycles.map((c) => ({ ...c, peakKw: peakDemandKw({ tariff, intervals, span: c, meterIntervalSeconds: 3600 }) }));

  it("looks back at the peaks of the window's own earlier cycles, as each cycle's bill does", () => {
    const byMonth = run(monthly.map((m, k) => ({ ...m, demandHistory: peaks.slice(0, k) })));
    const [whole] = run([{ window: yearWindow, billingCycles: cycles, demandHistory: [] }]);
    expect(whole.total).toBe(sum(byMonth, 'total'));
    expect(whole.lines.filter((l) => l.type === 'demand')).toEqual(byMonth.flatMap((m) => m.lines.filter((l) => l.type === 'demand')));
    expect(whole.pieces.map((p) => p.billingDemand?.kw)).toEqual(['40', '43', '300', ...Array(9).fill('240')]);
  });
});

describe('a window under a tariff that carries nothing', () => {
  it('stays one window, whatever cycles it spans', () => {
    const plain = rate(taxed, [{ window: yearWindow, billingCycles: cycles }]);
    expect(plain).toEqual(rate(taxed, [{ window: yearWindow }]));
    expect(plain[0].metering.parts).toBeUndefined();
  });
});
