/**
 * The metering modes on small hand-computed cases: what each window bills, what it carries in and out.
 */
import { describe, expect, it } from 'vitest';
import type { MeterInterval } from '../intervals.js';
import type { TariffDocument } from '../tariff.schema.js';
import { RatingError } from '../errors.js';
import { local } from '../test-support.js';
import { KWH, months, reading, touTariff, ZONE } from './test-tariffs.js';
import { EMPTY_METERING_STATE, type MeteredCharges, meteringHistoryStart, rateMeteredWindows, settlementYearStart } from './billing-windows.js';
import { type Metering, meteringOfTariff, resolveMetering } from './options.js';

function rate(tariff: TariffDocument, metering: Metering, intervals: MeterInterval[], windows: ReturnType<typeof months>, seconds = 3600): MeteredCharges[] {
  return rateMeteredWindows({ tariffTimeline: [{ from: Number.MIN_SAFE_INTEGER, tariff }], intervals, meterIntervalSeconds: seconds, windows, metering });
}

const line = (c: MeteredCharges, type: string, period: string) => c.lines.find((l) => l.type === type && 'period' in l && l.period === period);

describe('net metering with a kWh bank (SAM option 0)', () => {
  // 2018-05-01 and 2018-06-04 are weekdays (a Tuesday and a Monday)
  const intervals = [
    reading(ZONE, '2018-05-01T18:00', 0, 10), // winter peak: 10 kWh surplus
    reading(ZONE, '2018-05-01T12:00', 0, 3), // shoulder: 3 kWh surplus, in no slot: dropped
    reading(ZONE, '2018-05-02T02:00', 2, 0), // off-peak: 2 kWh billed
    reading(ZONE, '2018-06-04T16:00', 4, 0), // summer peak: 4 kWh against the 10 carried from the winter peak
    reading(ZONE, '2018-06-04T02:00', 5, 0), // off-peak: 5 kWh billed
  ];
  const metering = resolveMetering({ netMetering: { carryOver: 'kWh', trueUpMonth: 6, trueUpSellRate: '0.05' } });
  const [may, june, july] = rate(touTariff, metering, intervals, months(ZONE, 2018, 5, 7));

  it('nets each period over the window and bills only the deficit at its buy rate', () => {
    expect(may.lines.filter((l) => l.type === 'energy')).toEqual([expect.objectContaining({ period: 'off', quantity: '2', rate: '0.1', amount: '0.20' })]);
    expect(may.lines.some((l) => l.type === 'export_credit')).toBe(false);
    expect(may.total).toBe('5.20');
  });

  it("carries a period's surplus to the period at the same time of day next month, and drops one in no slot", () => {
    expect(may.metering.carriedOut.banks).toEqual([{ period: 'peak_w', kWh: '10', slot: 3 }]);
    expect(may.metering.periods!.find((p) => p.period === 'shoulder')).toMatchObject({ surplusKwh: '3', droppedKwh: '3' });
    expect(june.metering.periods!.find((p) => p.period === 'peak_s')).toMatchObject({ importKwh: '4', bankInKwh: '10', billedKwh: '0', surplusKwh: '6' });
    expect(line(june, 'energy', 'peak_s')).toBeUndefined();
    expect(line(june, 'energy', 'off')).toMatchObject({ quantity: '5', amount: '0.50' });
  });

  it('pays the running all-period net surplus at the true-up, not the banks, and starts the next window empty', () => {
    // running net: May +10 +3 -2 = 11; June -4 -5 = -9 -> 2 kWh, while the peak bank holds 6
    expect(june.metering.trueUpKwh).toBe('2');
    expect(line(june, 'export_credit', 'trueup')).toMatchObject({ quantity: '2', unit: 'kWh', rate: '0.05', amount: '-0.10' });
    expect(june.total).toBe('5.40');
    expect(june.metering.carriedOut).toEqual({ ...EMPTY_METERING_STATE, banks: [] });
    expect(july.metering.carriedIn.banks).toEqual([]);
  });

  it('rolls the true-up value over as money credit for later energy charges when asked', () => {
    const rollover = resolveMetering({ netMetering: { carryOver: 'kWh', trueUpMonth: 5, trueUpSellRate: '0.05', trueUpCreditRollover: true } });
    const [mayR, juneR] = rate(touTariff, rollover, intervals, months(ZONE, 2018, 5, 6));
    // May: running net 11 kWh x 0.05 = 0.55 rolled over; 0.20 of it offsets May's energy charge, 0.35 goes on
    expect(line(mayR, 'export_credit', 'trueup')).toBeUndefined();
    expect(line(mayR, 'export_credit', 'carryover')).toMatchObject({ amount: '-0.20' });
    expect(mayR.metering.credit).toMatchObject({ rolledOver: '0.55', applied: '0.20', balanceOut: '0.35' });
    expect(line(juneR, 'export_credit', 'carryover')).toMatchObject({ amount: '-0.35' });
    expect(juneR.metering.carriedOut.creditBalance).toBe('0');
    expect(meteringHistoryStart(touTariff, months(ZONE, 2018, 6, 6)[0].billingCycle, rollover)).toBeNull();
  });
});

describe('net metering tiers', () => {
  const tiered: TariffDocument = {
    ...touTariff,
    id: 'tiered',
    fixedCharges: [],
    seasons: [{ id: 'all', fromMonth: 1, toMonth: 12 }],
    energy: {
      periods: [
        { id: 'a', tiers: [{ max: '10', rate: '0.10' }, { rate: '0.20' }] },
        { id: 'b', tiers: [{ max: '10', rate: '0.30' }, { rate: '0.40' }] },
      ],
      schedule: [{ seasons: ['all'], dayTypes: ['weekday', 'weekend'], periods: [{ from: '00:00', period: 'a' }, { from: '12:00', period: 'b' }] }],
    },
  };
  const intervals = [reading(ZONE, '2018-05-01T02:00', 7, 1), reading(ZONE, '2018-05-01T13:00', 9, 0)];
  const nm = resolveMetering({ netMetering: {} });

  it("splits the window's billed kWh across tiers pro rata by period, as SAM does", () => {
    // billed a 6, b 9: tier 1 holds 10 (a 4, b 6), tier 2 the other 5 (a 2, b 3)
    const [may] = rate(tiered, nm, intervals, months(ZONE, 2018, 5, 5));
    expect(may.lines.map((l) => [l.type, 'period' in l ? l.period : '', 'tier' in l ? l.tier : 0, 'quantity' in l ? l.quantity : '', l.amount])).toEqual([
      ['energy', 'a', 1, '4', '0.40'],
      ['energy', 'a', 2, '2', '0.40'],
      ['energy', 'b', 1, '6', '1.80'],
      ['energy', 'b', 2, '3', '1.20'],
    ]);
  });

  it('fills each period\'s own tiers with tierScope "period"', () => {
    const [may] = rate({ ...tiered, energy: { ...tiered.energy!, tierScope: 'period' } }, nm, intervals, months(ZONE, 2018, 5, 5));
    expect(may.lines.map((l) => ('quantity' in l ? l.quantity : ''))).toEqual(['6', '9']);
  });

  it("sizes kWh/kW tiers by the window's billing demand (SAM's blocks), then splits pro rata", () => {
    // 100 kWh/kW x the 9 kW peak = 900 kWh: everything lands in tier 1
    const perKw = { ...tiered, energy: { ...tiered.energy!, periods: tiered.energy!.periods.map((p) => ({ ...p, tiers: [{ max: '100', unit: 'kWh/kW' as const, rate: p.tiers[0].rate }, { unit: 'kWh/kW' as const, rate: '0.9' }] })) } };
    const [may] = rate(perKw, nm, intervals, months(ZONE, 2018, 5, 5));
    expect(may.lines.filter((l) => l.type === 'energy').map((l) => [l.period, l.tier, l.quantity])).toEqual([
      ['a', 1, '6'],
      ['b', 1, '9'],
    ]);
    expect(may.pieces[0].billingDemand).toMatchObject({ kw: '9' });
  });
});

describe('net metering with money credits (SAM option 1)', () => {
  it("values each period's surplus at its sell rate into a balance that offsets energy charges and is paid at the true-up", () => {
    const intervals = [
      reading(ZONE, '2018-05-01T18:00', 0, 10), // peak_w surplus 10 x 0.06 = 0.60
      reading(ZONE, '2018-05-02T02:00', 2, 0), // off 2 x 0.10 = 0.20 charged
      reading(ZONE, '2018-06-04T02:00', 1, 0), // off 0.10 charged
    ];
    const metering = resolveMetering({ netMetering: { carryOver: 'dollars', trueUpMonth: 6 } });
    const [may, june] = rate(touTariff, metering, intervals, months(ZONE, 2018, 5, 6));
    expect(may.metering.credit).toMatchObject({ balanceIn: '0.00', earned: '0.60', applied: '0.20', balanceOut: '0.40' });
    expect(line(may, 'export_credit', 'carryover')).toMatchObject({ amount: '-0.20' });
    expect(may.total).toBe('5.00');
    expect(june.metering.credit).toMatchObject({ balanceIn: '0.40', applied: '0.10', paidAtTrueUp: '0.30', balanceOut: '0.00' });
    expect(line(june, 'export_credit', 'trueup')).toMatchObject({ quantity: '0.30', unit: 'USD', amount: '-0.30' });
    expect(june.total).toBe('4.70');
  });
});

describe('net billing with a money balance (SAM option 3)', () => {
  const intervals = [
    reading(ZONE, '2018-05-01T02:00', 3, 0), // 0.30 charged
    reading(ZONE, '2018-05-01T10:00', 0, 20), // 20 x 0.04 = 0.80 earned
    reading(ZONE, '2018-06-04T02:00', 5, 0), // 0.50 charged
    reading(ZONE, '2018-07-02T02:00', 1, 0), // 0.10 charged
  ];
  const base = { carryOver: 'dollars' as const, trueUpMonth: 7 };

  it("keeps a window's credits off its own bill, offsets later energy charges, pays the rest at the true-up", () => {
    const [may, june, july] = rate(touTariff, resolveMetering({ netBilling: base }), intervals, months(ZONE, 2018, 5, 7));
    expect(may.lines.some((l) => l.type === 'export_credit')).toBe(false);
    expect(may.total).toBe('5.30');
    expect(may.metering.credit).toMatchObject({ earned: '0.80', applied: '0.00', balanceOut: '0.80' });
    expect(line(june, 'export_credit', 'carryover')).toMatchObject({ amount: '-0.50' });
    expect(june.total).toBe('5.00');
    expect(line(july, 'export_credit', 'carryover')).toMatchObject({ amount: '-0.10' });
    expect(line(july, 'export_credit', 'trueup')).toMatchObject({ amount: '-0.20' });
    expect(july.total).toBe('4.80');
    expect(july.metering.carriedOut.creditBalance).toBe('0');
  });

  it('applies credits in the month earned and forfeits the balance at the true-up when asked', () => {
    const metering = resolveMetering({ netBilling: { ...base, applyCreditInMonthEarned: true, creditExpiresAtTrueUp: true } });
    const [may, june, july] = rate(touTariff, metering, intervals, months(ZONE, 2018, 5, 7));
    expect(line(may, 'export_credit', 'carryover')).toMatchObject({ amount: '-0.30' });
    expect(may.total).toBe('5.00');
    expect(june.metering.credit).toMatchObject({ balanceIn: '0.50', applied: '0.50', balanceOut: '0.00' });
    expect(july.metering.credit).toMatchObject({ applied: '0.00', expired: '0.00' });
    const [, , julyExpired] = rate(touTariff, metering, intervals.slice(0, 2), months(ZONE, 2018, 5, 7));
    expect(julyExpired.metering.credit).toMatchObject({ balanceIn: '0.50', expired: '0.50', paidAtTrueUp: '0.00', balanceOut: '0.00' });
    expect(line(julyExpired, 'export_credit', 'trueup')).toBeUndefined();
  });

  it('adds the monthly minimum on the bill after credits, and the annual minimum in December over the calendar year', () => {
    const tariff = { ...touTariff, id: 'tou-min', fixedCharges: [], minimumCharge: { amount: '0.40', per: 'month' as const } };
    const metering = resolveMetering({ netBilling: { ...base, trueUpMonth: 5 }, annualMinimum: '4' });
    const windows = months(ZONE, 2018, 5, 12);
    const charged = rate(tariff, metering, intervals, windows);
    // May: 0.30 charged, its credits wait: minimum 0.10; paid at the May true-up 0.80
    expect(charged[0].lines.find((l) => l.type === 'minimum')).toMatchObject({ minimum: '0.40', amount: '0.10' });
    expect(line(charged[0], 'export_credit', 'trueup')).toMatchObject({ amount: '-0.80' });
    // bills May-December 0.30 + 0.50 + 0.10 (each before minimums): December adds 4 - 0.90
    const december = charged[7];
    expect(december.lines.find((l) => l.type === 'minimum' && 'scope' in l)).toMatchObject({ scope: 'annual', billed: '0.90', amount: '3.10' });
    expect(december.metering.carriedOut.yearBills).toBe('0');
  });
});

describe('net billing hourly', () => {
  it('nets import and export within each local clock hour, the repeated hour of a DST day twice', () => {
    const zone = 'America/Los_Angeles';
    const tariff: TariffDocument = {
      id: 'flat-sell',
      name: 'flat',
      currency: { code: 'USD', minorUnit: 2 },
      timeZone: zone,
      seasons: [{ id: 'all', fromMonth: 1, toMonth: 12 }],
      energy: { periods: [{ id: 'any', tiers: [{ rate: '0.10' }], sell: '0.10' }], schedule: [{ seasons: ['all'], dayTypes: ['weekday', 'weekend'], periods: [{ from: '00:00', period: 'any' }] }] },
    };
    const pdt = local(zone, '2026-11-01T01:00'); // 01:00 PDT; 01:00 PST is an hour later
    const q = (offsetMinutes: number, imp: number, exp: number): MeterInterval => ({
      intervalStart: pdt + offsetMinutes * 60_000,
      intervalSeconds: 900,
      importMwh: imp * KWH,
      exportMwh: exp * KWH,
      quality: 'actual',
    });
    // first 01:00 hour: +4 -1 = net import 3; second 01:00 hour: +1 -3 = net export 2
    const intervals = [q(0, 4, 0), q(15, 0, 1), q(60, 1, 0), q(75, 0, 3)];
    const window = { from: local(zone, '2026-11-01T00:00'), to: local(zone, '2026-11-02T00:00') };
    const [hourly] = rate(tariff, resolveMetering({ dgRules: 'Net Billing Hourly' }), intervals, [{ window, billingCycle: window }], 900);
    expect(hourly.lines.find((l) => l.type === 'energy')).toMatchObject({ quantity: '3', amount: '0.30' });
    expect(hourly.lines.find((l) => l.type === 'export_credit')).toMatchObject({ quantity: '2', amount: '-0.20' });
    expect(hourly.coverage.actualIntervals).toBe(4);
    const [instant] = rate(tariff, resolveMetering({}), intervals, [{ window, billingCycle: window }], 900);
    expect(instant.lines.find((l) => l.type === 'energy')).toMatchObject({ quantity: '5' });
    expect(instant.lines.find((l) => l.type === 'export_credit')).toMatchObject({ quantity: '4' });
  });
});

describe('buy all sell all', () => {
  it('bills every import and credits every export of one interval, never netting them', () => {
    const intervals = [reading(ZONE, '2018-05-01T10:00', 2, 5)];
    const [may] = rate(touTariff, resolveMetering({ dgRules: 'Buy All Sell All' }), intervals, months(ZONE, 2018, 5, 5));
    expect(line(may, 'energy', 'off')).toMatchObject({ quantity: '2', amount: '0.20' });
    expect(line(may, 'export_credit', 'off')).toMatchObject({ quantity: '5', amount: '-0.20' });
    expect(may.metering).toMatchObject({ mode: 'buy_all_sell_all', carryOver: null });
  });
});

describe("settlement years and where a window's history starts", () => {
  const cycle = months(ZONE, 2018, 8, 8)[0].billingCycle; // August 2018
  it('starts the year the month after the true-up month', () => {
    const may = resolveMetering({ netMetering: { trueUpMonth: 5 } });
    expect(settlementYearStart(touTariff, cycle.to - 1, may)).toBe(local(ZONE, '2018-06-01T00:00'));
    expect(settlementYearStart(touTariff, local(ZONE, '2018-05-31T23:00'), may)).toBe(local(ZONE, '2017-06-01T00:00'));
    expect(settlementYearStart(touTariff, cycle.to - 1, resolveMetering({ netMetering: {} }))).toBe(local(ZONE, '2018-01-01T00:00'));
    expect(meteringHistoryStart(touTariff, cycle, may)).toBe(local(ZONE, '2018-06-01T00:00'));
  });
  it('reaches back to the settlement year holding January with an annual minimum; to the window itself when nothing is carried', () => {
    expect(meteringHistoryStart(touTariff, cycle, resolveMetering({ netMetering: { trueUpMonth: 5 }, annualMinimum: '100' }))).toBe(local(ZONE, '2017-06-01T00:00'));
    expect(meteringHistoryStart(touTariff, cycle, resolveMetering({}))).toBe(cycle.from);
  });
});

describe('options and refusals', () => {
  it('reads defaults: net metering banks kWh, true-up in December at 0, no roll-over', () => {
    expect(meteringOfTariff({ ...touTariff, netMetering: {} })).toEqual({
      mode: 'net_metering',
      netMetering: { carryOver: 'kWh', trueUpMonth: 12, trueUpSellRate: '0', trueUpCreditRollover: false },
    });
    expect(meteringOfTariff(touTariff)).toEqual({ mode: 'net_billing_instantaneous' });
  });
  it('settles a billing cycle split into two windows (a tariff change) once, in its last window', () => {
    const later = { ...touTariff, id: 'tou-2' };
    const [dec] = months(ZONE, 2018, 12, 12);
    const split = local(ZONE, '2018-12-15T00:00');
    const intervals = [reading(ZONE, '2018-12-03T10:00', 0, 10), reading(ZONE, '2018-12-17T10:00', 0, 10)];
    const [first, second] = rateMeteredWindows({
      tariffTimeline: [
        { from: Number.MIN_SAFE_INTEGER, tariff: touTariff },
        { from: split, tariff: later },
      ],
      intervals,
      meterIntervalSeconds: 3600,
      windows: [
        { window: { from: dec.window.from, to: split }, billingCycle: dec.billingCycle },
        { window: { from: split, to: dec.window.to }, billingCycle: dec.billingCycle },
      ],
      metering: resolveMetering({ netMetering: { trueUpSellRate: '0.05' } }),
    });
    expect(first.metering.trueUp).toBe(false);
    expect(first.metering.carriedOut.runningNetKwh).toBe('10');
    expect(second.metering).toMatchObject({ trueUp: true, trueUpKwh: '20' });
    expect(line(second, 'export_credit', 'trueup')).toMatchObject({ amount: '-1.00', tariffId: 'tou-2' });
  });

  it('refuses windows that are not consecutive', () => {
    const [a, , c] = months(ZONE, 2018, 1, 3);
    const nm = resolveMetering({ netMetering: {} });
    expect(() => rate(touTariff, nm, [], [a, c])).toThrow(RatingError);
  });
});
