/**
 * Windows spanning a change of tariff document under a netting or carrying mode: rated in parts at the
 * changes, in sequence, as the windows of one billing cycle; what is carried is settled at a change of
 * settlement rules and at the end of service.
 */
import { describe, expect, it } from 'vitest';
import type { ChargeLine } from '../lines.js';
import { ratePlainWindow, rateWindow } from '../rate.js';
import type { TariffDocument } from '../tariff.schema.js';
import type { TariffTimelineEntry } from '../timeline.js';
import { local } from '../test-support.js';
import { Dec } from '../money.js';
import { months, reading, touTariff, ZONE } from './test-tariffs.js';
import { EMPTY_METERING_STATE, type MeteredWindowInput, meteringHistoryStart, rateMeteredWindows } from './billing-windows.js';

const nm: TariffDocument = { ...touTariff, id: 'nm', effectiveFrom: '2017-01-01T00:00:00-07:00', netMetering: { trueUpSellRate: '0.05' } };
const withOffRate = (document: TariffDocument, rate: string): TariffDocument => ({
  ...document,
  energy: { ...document.energy!, periods: document.energy!.periods.map((p) => (p.id === 'off' ? { ...p, tiers: [{ rate }] } : p)) },
});
const midMay = local(ZONE, '2018-05-15T00:00');
const version2: TariffDocument = { ...withOffRate(nm, '0.12'), effectiveFrom: '2018-05-15T00:00:00-07:00' };
const timeline = (...entries: [number, TariffDocument][]): TariffTimelineEntry[] => entries.map(([from, tariff]) => ({ from, tariff }));
const versions = timeline([Number.MIN_SAFE_INTEGER, nm], [midMay, version2]);

// 2018-05-01 Tue, 05-02 Wed, 05-20 Sun, 05-21 Mon, 06-04 Mon
const intervals = [
  reading(ZONE, '2018-05-01T18:00', 0, 10), // winter peak surplus 10 (banked, slot 17:00)
  reading(ZONE, '2018-05-02T02:00', 2, 0), // off-peak, version 1: 2 x 0.10
  reading(ZONE, '2018-05-20T02:00', 3, 0), // off-peak (weekend), version 2: 3 x 0.12
  reading(ZONE, '2018-05-21T18:00', 4, 0), // winter peak, version 2: 4 against the bank of 10
  reading(ZONE, '2018-06-04T16:00', 1, 0), // summer peak against the bank carried on
];
const notTax = (lines: ChargeLine[]) => lines.filter((l) => l.type !== 'tax');
const fixed = (lines: ChargeLine[]) => lines.filter((l) => l.type === 'fixed');

describe('a window spanning a new version of a net-metered tariff', () => {
  const [may, june] = months(ZONE, 2018, 5, 6);
  const whole = rateMeteredWindows({ tariffTimeline: versions, intervals, meterIntervalSeconds: 3600, windows: [may, june] });
  const split = rateMeteredWindows({
    tariffTimeline: versions,
    intervals,
    meterIntervalSeconds: 3600,
    windows: [{ window: { from: may.window.from, to: midMay }, billingCycle: may.billingCycle }, { window: { from: midMay, to: may.window.to }, billingCycle: may.billingCycle }, june],
  });

  it('is rated as the windows of its cycle split at the change: the lines of both parts, totals summed exactly', () => {
    expect(whole[0].lines).toEqual([...notTax(split[0].lines), ...notTax(split[1].lines)]);
    expect(whole[0].total).toBe(new Dec(split[0].total).plus(split[1].total).toFixed(2));
    expect(whole[0].lines.filter((l) => l.type === 'energy').map((l) => [l.period, l.quantity, l.rate, l.tariffId])).toEqual([
      ['off', '2', '0.1', 'nm'],
      ['off', '3', '0.12', 'nm'],
    ]);
    expect(whole[0].pieces.map((p) => p.tariffEffectiveFrom)).toEqual([nm.effectiveFrom, version2.effectiveFrom]);
    expect(whole[0].coverage.actualIntervals).toBe(4);
  });

  it('carries the bank on across a change of prices: the second part nets against what the first banked', () => {
    const [first, second] = whole[0].metering.parts!;
    expect(first.carriedOut.banks).toEqual([{ period: 'peak_w', kWh: '10', slot: 3 }]);
    expect(second.carriedIn).toEqual(first.carriedOut);
    expect(second.periods!.find((p) => p.period === 'peak_w')).toMatchObject({ bankInKwh: '10', importKwh: '4', billedKwh: '0', surplusKwh: '6' });
    expect(whole[0].metering).toMatchObject({ carriedIn: EMPTY_METERING_STATE, carriedOut: split[1].metering.carriedOut, trueUp: false });
    expect([first.from, first.to, second.to].map(Date.parse)).toEqual([may.window.from, midMay, may.window.to]);
  });

  it('hands the next cycle what the last part carried out', () => {
    expect(whole[1]).toEqual(split[2]);
    expect(whole[1].metering.carriedIn.banks).toEqual([{ period: 'peak_w', kWh: '6', slot: 3 }]);
  });

  it('prorates fixed charges as the plain rating prorates them across a change, with or without a billing cycle', () => {
    const plain = ratePlainWindow({ tariffTimeline: timeline([Number.MIN_SAFE_INTEGER, touTariff], [midMay, version2]), intervals: [], billingWindow: may.window, billingCycle: may.billingCycle, meterIntervalSeconds: 3600 });
    expect(fixed(whole[0].lines)).toEqual(fixed(plain.lines).map((l) => ({ ...l, tariffId: 'nm' })));
    expect(fixed(whole[0].lines).map((l) => l.amount)).toEqual(['2.26', '2.74']); // 14 and 17 days of 31

    const noCycle = rateMeteredWindows({ tariffTimeline: versions, intervals, meterIntervalSeconds: 3600, windows: [{ window: may.window }] })[0];
    const plainNoCycle = ratePlainWindow({ tariffTimeline: versions, intervals: [], billingWindow: may.window, meterIntervalSeconds: 3600 });
    expect(fixed(noCycle.lines)).toEqual(fixed(plainNoCycle.lines));
    expect(noCycle.pieces.map((p) => p.prorationFactor)).toEqual(plainNoCycle.pieces.map((p) => p.prorationFactor));
  });

  it('is what rateWindow gives with the state carried in', () => {
    const one = rateWindow({ tariffTimeline: versions, intervals, billingWindow: may.window, billingCycle: may.billingCycle, meterIntervalSeconds: 3600, carriedIn: EMPTY_METERING_STATE });
    expect(one).toEqual(whole[0]);
  });

  it('settles the cycle once, in its last part, in the true-up month', () => {
    const [dec] = months(ZONE, 2018, 12, 12);
    const midDec = local(ZONE, '2018-12-15T00:00');
    const decIntervals = [reading(ZONE, '2018-12-03T10:00', 0, 10), reading(ZONE, '2018-12-17T10:00', 0, 10)];
    const [december] = rateMeteredWindows({ tariffTimeline: timeline([Number.MIN_SAFE_INTEGER, nm], [midDec, withOffRate(nm, '0.11')]), intervals: decIntervals, meterIntervalSeconds: 3600, windows: [dec] });
    expect(december.metering.parts!.map((p) => p.trueUp)).toEqual([false, true]);
    expect(december.metering).toMatchObject({ trueUp: true, trueUpKwh: '20', carriedOut: EMPTY_METERING_STATE });
    expect(december.lines.filter((l) => l.type === 'export_credit')).toEqual([expect.objectContaining({ period: 'trueup', amount: '-1.00' })]);
  });

  it('taxes the parts on their summed base per tax', () => {
    const taxed = (d: TariffDocument): TariffDocument => ({ ...d, taxes: [{ name: 'VAT', rate: '0.1' }] });
    const [c] = rateMeteredWindows({ tariffTimeline: timeline([Number.MIN_SAFE_INTEGER, taxed(nm)], [midMay, taxed(version2)]), intervals, meterIntervalSeconds: 3600, windows: [may] });
    const subtotal = new Dec(c.subtotal);
    expect(c.lines.filter((l) => l.type === 'tax')).toEqual([{ type: 'tax', name: 'VAT', rate: '0.1', base: subtotal.toFixed(2), amount: subtotal.mul('0.1').toDecimalPlaces(2, Dec.ROUND_HALF_UP).toFixed(2) }]);
    expect(c.total).toBe(subtotal.plus(c.taxes).toFixed(2));
  });
});

describe('a change of settlement rules settles what is carried at the change', () => {
  const [may, june] = months(ZONE, 2018, 5, 6);
  it('pays the kWh bank at the true-up sell rate when net metering becomes net billing mid-cycle, and starts the new rules empty', () => {
    const netBilling: TariffDocument = { ...touTariff, id: 'nb', netBilling: {} };
    const [c] = rateMeteredWindows({ tariffTimeline: timeline([Number.MIN_SAFE_INTEGER, nm], [midMay, netBilling]), intervals: [...intervals, reading(ZONE, '2018-05-20T10:00', 0, 5)], meterIntervalSeconds: 3600, windows: [may] });
    const [first, second] = c.metering.parts!;
    // the running net: 10 exported at the winter peak - 2 imported off-peak
    expect(first).toMatchObject({ mode: 'net_metering', trueUp: true, settledBy: 'metering_rules_change', trueUpKwh: '8', carriedOut: EMPTY_METERING_STATE });
    expect(c.lines.find((l) => l.type === 'export_credit' && l.period === 'trueup')).toMatchObject({ quantity: '8', rate: '0.05', amount: '-0.40', tariffId: 'nm' });
    expect(second).toMatchObject({ mode: 'net_billing_instantaneous', carryOver: 'dollars', carriedIn: EMPTY_METERING_STATE });
    expect(second.credit).toMatchObject({ earned: '0.20', balanceOut: '0.20' }); // 5 kWh off-peak at 0.04
    expect(c.metering).toMatchObject({ trueUp: true, settledBy: 'metering_rules_change', carryOver: 'dollars', carriedOut: { creditBalance: '0.2' } });
  });

  it('settles at a change of the true-up month, also where it falls on a cycle boundary, whatever windows follow', () => {
    const june1 = june.window.from;
    const moved = timeline([Number.MIN_SAFE_INTEGER, nm], [june1, { ...nm, effectiveFrom: '2018-06-01T00:00:00-07:00', netMetering: { trueUpSellRate: '0.05', trueUpMonth: 6 } }]);
    const [alone] = rateMeteredWindows({ tariffTimeline: moved, intervals, meterIntervalSeconds: 3600, windows: [may] });
    const [followed, next] = rateMeteredWindows({ tariffTimeline: moved, intervals, meterIntervalSeconds: 3600, windows: [may, june] });
    expect(followed).toEqual(alone);
    expect(alone.metering).toMatchObject({ trueUp: true, settledBy: 'metering_rules_change', carriedOut: EMPTY_METERING_STATE });
    expect(next.metering.carriedIn).toEqual(EMPTY_METERING_STATE);
  });

  it('carries a money balance on across a change of prices, and pays it in full (never forfeited) at a change of rules', () => {
    const nb = (id: string, month: number): TariffDocument => ({ ...touTariff, id, netBilling: { trueUpMonth: month, creditExpiresAtTrueUp: true } });
    const exported = [reading(ZONE, '2018-05-01T10:00', 0, 20)]; // 20 x 0.04 = 0.80
    const [samePrices] = rateMeteredWindows({ tariffTimeline: timeline([Number.MIN_SAFE_INTEGER, nb('a', 12)], [midMay, withOffRate(nb('a', 12), '0.12')]), intervals: exported, meterIntervalSeconds: 3600, windows: [may] });
    expect(samePrices.metering.parts![1].carriedIn.creditBalance).toBe('0.8');
    expect(samePrices.metering.trueUp).toBe(false);
    const [otherRules] = rateMeteredWindows({ tariffTimeline: timeline([Number.MIN_SAFE_INTEGER, nb('a', 12)], [midMay, nb('b', 3)]), intervals: exported, meterIntervalSeconds: 3600, windows: [may] });
    expect(otherRules.metering.parts![0].credit).toMatchObject({ paidAtTrueUp: '0.80', expired: '0.00', balanceOut: '0.00' });
  });

  it('leaves the history start right: rating from the new rules\' settlement year gives what rating from the old rules\' gives', () => {
    // true-up in April until February 15, in December from then: March's history starts January 1 (the new
    // rules' year), where the old rules still carried; the change settles it, so both starts agree.
    const april: TariffDocument = { ...nm, id: 'april', netMetering: { trueUpSellRate: '0.05', trueUpMonth: 4 } };
    const midFeb = local(ZONE, '2018-02-15T00:00');
    const changed = timeline([Number.MIN_SAFE_INTEGER, april], [midFeb, { ...nm, id: 'december' }]);
    const monthly = months(ZONE, 2017, 5, 15); // May 2017 to March 2018
    const exports = ['2017-05', '2017-06', '2017-07', '2017-08', '2017-09', '2017-10', '2017-11', '2017-12', '2018-01', '2018-02', '2018-03'].map((month) => reading(ZONE, `${month}-08T10:00`, 1, 3));
    const march = monthly[monthly.length - 1];
    const start = meteringHistoryStart(changed[1].tariff, march.billingCycle);
    expect(start).toBe(local(ZONE, '2018-01-01T00:00'));
    const fromOldYear = rateMeteredWindows({ tariffTimeline: changed, intervals: exports, meterIntervalSeconds: 3600, windows: monthly });
    const fromNewYear = rateMeteredWindows({ tariffTimeline: changed, intervals: exports, meterIntervalSeconds: 3600, windows: monthly.filter((m) => m.window.from >= start!) });
    expect(fromNewYear[fromNewYear.length - 1]).toEqual(fromOldYear[fromOldYear.length - 1]);
    expect(fromOldYear[fromOldYear.length - 3].metering.carriedIn.runningNetKwh).not.toBe('0'); // January: the old rules carried
  });
});

describe('the last window of a meter\'s service', () => {
  const [may] = months(ZONE, 2018, 5, 5);
  const moveOut = local(ZONE, '2018-05-10T00:00');
  const window: MeteredWindowInput = { window: { from: may.window.from, to: moveOut }, billingCycle: may.billingCycle, finalWindow: true };

  it('settles the kWh bank at the true-up sell rate, paid rather than rolled over', () => {
    const rollover: TariffDocument = { ...nm, netMetering: { trueUpSellRate: '0.05', trueUpCreditRollover: true } };
    const [final] = rateMeteredWindows({ tariffTimeline: timeline([Number.MIN_SAFE_INTEGER, rollover]), intervals, meterIntervalSeconds: 3600, windows: [window] });
    expect(final.metering).toMatchObject({ trueUp: true, settledBy: 'service_end', trueUpKwh: '8', carriedOut: EMPTY_METERING_STATE });
    expect(final.metering.credit).toBeUndefined(); // nothing rolled over into a money balance
    expect(final.lines.find((l) => l.type === 'export_credit' && l.period === 'trueup')).toMatchObject({ quantity: '8', amount: '-0.40' });
    expect(fixed(final.lines).map((l) => l.amount)).toEqual(['1.45']); // 9 of 31 days
  });

  it('pays a net billing balance whose rules would forfeit it at the true-up', () => {
    const nb: TariffDocument = { ...touTariff, id: 'nb', netBilling: { creditExpiresAtTrueUp: true } };
    const [final] = rateMeteredWindows({ tariffTimeline: timeline([Number.MIN_SAFE_INTEGER, nb]), intervals: [reading(ZONE, '2018-05-01T10:00', 0, 20)], meterIntervalSeconds: 3600, windows: [window] });
    expect(final.metering.credit).toMatchObject({ earned: '0.80', paidAtTrueUp: '0.80', expired: '0.00', balanceOut: '0.00' });
  });

  it('prorates tier limits by the days in service (the timeline limited to them), as the plain rating does', () => {
    const tiered: TariffDocument = {
      ...touTariff,
      id: 'tiered',
      fixedCharges: [],
      netMetering: {},
      energy: { ...touTariff.energy!, periods: touTariff.energy!.periods.map((p) => ({ ...p, tiers: [{ max: '30', rate: '0.10' }, { rate: '0.20' }] })) },
    };
    const [june] = months(ZONE, 2018, 6, 6);
    const served = { from: june.window.from, to: local(ZONE, '2018-06-16T00:00') }; // 15 of 30 days
    const imports = [reading(ZONE, '2018-06-04T02:00', 18, 0)];
    const inService = (tariff: TariffDocument) => [{ from: served.from, to: served.to, tariff }];
    const [final] = rateMeteredWindows({ tariffTimeline: inService(tiered), intervals: imports, meterIntervalSeconds: 3600, windows: [{ window: served, billingCycle: june.billingCycle, finalWindow: true }] });
    const plain = ratePlainWindow({ tariffTimeline: inService({ ...tiered, netMetering: undefined }), intervals: imports, billingWindow: served, billingCycle: june.billingCycle, meterIntervalSeconds: 3600 });
    const energy = (c: { lines: ChargeLine[] }) => c.lines.filter((l) => l.type === 'energy').map((l) => [l.tier, l.quantity]);
    expect(energy(final)).toEqual([
      [1, '15'], // 30 kWh x 15/30 days
      [2, '3'],
    ]);
    expect(energy(final)).toEqual(energy(plain));
  });
});
