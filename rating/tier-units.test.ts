/**
 * Tier units (kWh daily, kWh/kW with SAM's block conversion, kWh/kW daily), the demand ratchet, coincident
 * demand, per-tier sell rates and net metering, each against figures computed by hand.
 */
import { describe, expect, it } from 'vitest';
import type { CompiledEnergyPeriod } from './compiled-tariff.js';
import { resolveTiers } from './energy-tiers.js';
import { rateWindow, RatingError, type TariffDocument } from './index.js';
import { Dec } from './money.js';
import { flatTariff, linesOf, local, rateWith, series } from './test-support.js';

const ZONE = 'America/Phoenix'; // no DST: days are 24 hours
const JULY = { from: local(ZONE, '2018-07-01T00:00'), to: local(ZONE, '2018-08-01T00:00') };
const JUNE = { from: local(ZONE, '2018-06-01T00:00'), to: local(ZONE, '2018-07-01T00:00') };

const energy = (tiers: NonNullable<TariffDocument['energy']>['periods'][number]['tiers'], extra: Partial<TariffDocument> = {}): TariffDocument =>
  flatTariff({
    timeZone: ZONE,
    energy: {
      periods: [{ id: 'p0', tiers }],
      schedule: [{ seasons: ['all'], dayTypes: ['weekday', 'weekend'], periods: [{ from: '00:00', period: 'p0' }] }],
    },
    ...extra,
  });

describe('kWh daily tiers', () => {
  it('multiply the limit by the local days of the window', () => {
    // 10 kWh/day x 31 days = 310 kWh at 0.1, the rest at 0.2; 0.5 kWh a quarter hour = 48 kWh a day, 1488 in July.
    const tariff = energy([{ max: '10', unit: 'kWh daily', rate: '0.1' }, { rate: '0.2' }]);
    const charges = rateWith(tariff, series(JULY.from, JULY.to, 900, () => 500_000), JULY.from, JULY.to);
    expect(linesOf(charges, 'energy').map((l) => [l.tier, l.quantity, l.amount])).toEqual([
      [1, '310', '31.00'],
      [2, '1178', '235.60'],
    ]);
    // Ten days: 100 kWh in tier 1.
    const tenDays = local(ZONE, '2018-07-11T00:00');
    expect(linesOf(rateWith(tariff, series(JULY.from, tenDays, 900, () => 500_000), JULY.from, tenDays), 'energy').map((l) => l.quantity)).toEqual(['100', '380']);
  });
});

describe("kWh/kW tiers with SAM's block conversion", () => {
  // The rate of peer-conformance/sam-commercial-kwh-per-kw: 200 kWh/kW header, kWh steps, then blocks at 400 and 600 kWh/kW.
  const period: CompiledEnergyPeriod = {
    id: 'p0',
    sell: null,
    sellPerTier: false,
    tiers: [
      ['200', 'kWh/kW'],
      ['3000', 'kWh'],
      ['10000', 'kWh'],
      ['200000', 'kWh'],
      ['1e38', 'kWh'],
      ['400', 'kWh/kW'],
      ['600', 'kWh/kW'],
      [null, 'kWh/kW'],
    ].map(([max, unit]) => ({
      max: max === null ? null : new Dec(max),
      unit: unit as 'kWh' | 'kWh/kW',
      limit: max === null || unit !== 'kWh' ? null : BigInt(new Dec(max).mul(1_000_000).toFixed()), // mWh
      rate: new Dec('0.1'),
      sell: null,
    })),
  };

  it('turns the header into blocks of max x billing demand, cut the kWh steps at the block end', () => {
    // D = 658.0156 kW: 200 D = 131603.12 kWh, 400 D = 263206.24, 600 D = 394809.36.
    const resolved = resolveTiers(period, { share: new Dec(1), days: 31, billingDemandKw: new Dec('658.0156') });
    const kwh = (t: { upper: bigint | null }) => (t.upper === null ? null : new Dec(t.upper.toString()).div(1_000_000).toFixed());
    expect(resolved.map((t) => [t.index + 1, kwh(t)])).toEqual([
      [2, '3000'],
      [3, '10000'],
      [4, '131603.12'],
      [6, '263206.24'],
      [7, '394809.36'],
      [8, null],
    ]);
  });

  it('with a large billing demand the kWh steps end before the block, and the "no limit" step fills it', () => {
    // D = 2000 kW: 200 D = 400000 kWh > 200000: tier 4 ends at 200000, tier 5 (no limit) takes the block to 400000.
    const resolved = resolveTiers(period, { share: new Dec(1), days: 31, billingDemandKw: new Dec('2000') });
    const kwh = (t: { upper: bigint | null }) => (t.upper === null ? null : new Dec(t.upper.toString()).div(1_000_000).toFixed());
    expect(resolved.map((t) => [t.index + 1, kwh(t)])).toEqual([
      [2, '3000'],
      [3, '10000'],
      [4, '200000'],
      [5, '400000'],
      [6, '800000'],
      [7, '1200000'],
      [8, null],
    ]);
  });

  it('rates a month: the billing demand is the highest interval demand of the window', () => {
    // 10 kW every hour (7440 kWh), one hour at 20 kW: D = 20 kW; blocks 100 kWh/kW = 2000 kWh, then 1000 kWh steps.
    const tariff = energy([
      { max: '100', unit: 'kWh/kW', rate: '0.5' },
      { max: '1000', rate: '0.2' },
      { max: '200', unit: 'kWh/kW', rate: '0.1' },
      { unit: 'kWh/kW', rate: '0.05' },
    ]);
    const readings = series(JULY.from, JULY.to, 3600, (_, i) => (i === 100 ? 20_000_000 : 10_000_000));
    const charges = rateWith(tariff, readings, JULY.from, JULY.to);
    // Tier 2 (the kWh step in the header's block) 0-1000; tier 3 (the next block, to 200 kWh/kW = 4000 kWh)
    // takes everything from the step's end, as SAM's conversion has it; tier 4 above 4000.
    expect(linesOf(charges, 'energy').map((l) => [l.tier, l.quantity])).toEqual([
      [2, '1000'],
      [3, '3000'],
      [4, '3450'],
    ]);
    expect(charges.pieces[0].billingDemand).toEqual({ kw: '20', measuredKw: '20' });
  });
});

describe('demand ratchet', () => {
  const tariff = flatTariff({
    timeZone: ZONE,
    demand: { flat: [{ id: 'p0', seasons: ['all'], tiers: [{ rate: '10' }] }] },
    billingDemand: { lookbackPercent: '0.8', lookbackMonths: [6, 7, 8, 9], lookbackHorizonMonths: 11 },
  });
  const july = series(JULY.from, JULY.to, 3600, () => 50_000_000); // 50 kW

  it('bills the larger of the window peak and the percentage of the highest flagged preceding peak, and says which cycle set it', () => {
    const charges = rateWindow({
      tariffTimeline: [{ from: Number.NEGATIVE_INFINITY, tariff }],
      intervals: july,
      billingWindow: JULY,
      meterIntervalSeconds: 3600,
      demandHistory: [
        { ...JUNE, peakKw: '100' }, // flagged: 80 kW
        { from: local(ZONE, '2018-01-01T00:00'), to: local(ZONE, '2018-02-01T00:00'), peakKw: '500' }, // January: not flagged
      ],
    });
    expect(linesOf(charges, 'demand')).toEqual([
      {
        type: 'demand',
        period: 'flat',
        flatDemandPeriod: 'p0',
        tier: 1,
        quantity: '80',
        unit: 'kW',
        rate: '10',
        amount: '800.00',
        tariffId: 'flat',
        measuredKw: '50',
        billingDemandSetBy: { from: '2018-06-01T07:00:00Z', to: '2018-07-01T07:00:00Z', peakKw: '100', lookbackPercent: '0.8' },
      },
    ]);
    expect(charges.pieces[0].billingDemand).toEqual({
      kw: '80',
      measuredKw: '50',
      setBy: { from: '2018-06-01T07:00:00Z', to: '2018-07-01T07:00:00Z', peakKw: '100', lookbackPercent: '0.8' },
    });
  });

  it('looks back only the horizon: the latest cycles ending before the window', () => {
    const lastSeptember = { from: local(ZONE, '2017-09-01T00:00'), to: local(ZONE, '2017-10-01T00:00') };
    const input = (horizon: number) =>
      rateWindow({
        tariffTimeline: [{ from: Number.NEGATIVE_INFINITY, tariff: { ...tariff, billingDemand: { ...tariff.billingDemand!, lookbackHorizonMonths: horizon } } }],
        intervals: july,
        billingWindow: JULY,
        meterIntervalSeconds: 3600,
        demandHistory: [
          { ...lastSeptember, peakKw: '200' },
          ...[10, 11, 12].map((m) => ({ from: local(ZONE, `2017-${m}-01T00:00`), to: local(ZONE, m === 12 ? '2018-01-01T00:00' : `2017-${m + 1}-01T00:00`), peakKw: '0' })),
          ...[1, 2, 3, 4, 5, 6].map((m) => ({ from: local(ZONE, `2018-0${m}-01T00:00`), to: local(ZONE, `2018-0${m + 1}-01T00:00`), peakKw: '10' })),
          { from: JULY.to, to: local(ZONE, '2018-09-01T00:00'), peakKw: '900' }, // after the window: never
        ],
      });
    expect(linesOf(input(10), 'demand')[0].quantity).toBe('160'); // September 2017 is the 10th cycle back
    expect(linesOf(input(9), 'demand')[0].quantity).toBe('50');
  });

  it('rates on the window alone, and says so, when the preceding cycles are not supplied', () => {
    const charges = rateWith(tariff, july, JULY.from, JULY.to);
    expect(linesOf(charges, 'demand')[0].quantity).toBe('50');
    expect(charges.notes).toEqual(['flat: demand ratchet not applied: the peak demand of the preceding billing cycles was not supplied']);
  });
});

describe('coincident demand', () => {
  it('charges the highest demand within each coincident period of its own schedule', () => {
    const tariff = flatTariff({
      timeZone: ZONE,
      demand: {
        coincident: {
          periods: [
            { id: 'p0', tiers: [{ rate: '0' }] },
            { id: 'p1', tiers: [{ rate: '7.5' }] },
          ],
          schedule: [{ seasons: ['all'], dayTypes: ['weekday', 'weekend'], periods: [{ from: '00:00', period: 'p0' }, { from: '15:00', period: 'p1' }, { from: '18:00', period: 'p0' }] }],
        },
      },
    });
    const day = { from: local(ZONE, '2018-07-02T00:00'), to: local(ZONE, '2018-07-03T00:00') };
    // 4 kW all day, 30 kW at 09:00, 12 kW at 16:00.
    const charges = rateWith(tariff, series(day.from, day.to, 3600, (_, h) => (h === 9 ? 30_000_000 : h === 16 ? 12_000_000 : 4_000_000)), day.from, day.to);
    expect(linesOf(charges, 'demand').map((l) => [l.period, l.coincidentPeriod, l.quantity, l.amount])).toEqual([
      ['coincident', 'p0', '30', '0.00'],
      ['coincident', 'p1', '12', '90.00'],
    ]);
  });
});

describe('sell rates per tier', () => {
  it('credits export per tier, filling the tiers with the cumulative export as imports fill them', () => {
    const tariff = energy([
      { max: '10', rate: '0.2', sell: '0.1' },
      { rate: '0.3', sell: '0.05' },
    ]);
    const day = { from: local(ZONE, '2018-07-02T00:00'), to: local(ZONE, '2018-07-03T00:00') };
    // 1 kWh exported every hour: 24 kWh, 10 at 0.1 and 14 at 0.05.
    const charges = rateWith(tariff, series(day.from, day.to, 3600, () => 0, () => 1_000_000), day.from, day.to);
    expect(linesOf(charges, 'export_credit').map((l) => [l.tier, l.quantity, l.rate, l.amount])).toEqual([
      [1, '10', '0.1', '-1.00'],
      [2, '14', '0.05', '-0.70'],
    ]);
  });
});

describe('net metering', () => {
  const tariff = flatTariff({ timeZone: ZONE, netMetering: {} });
  const day = { from: local(ZONE, '2018-07-02T00:00'), to: local(ZONE, '2018-07-03T00:00') };

  it('rates a window without export as usual (netting changes nothing)', () => {
    expect(rateWith(tariff, series(day.from, day.to, 3600, () => 1_000_000), day.from, day.to).total).toBe('2.40');
  });

  it('refuses a window with export, naming the intervals, rather than billing it gross', () => {
    const readings = series(day.from, day.to, 3600, () => 1_000_000, (_, h) => (h === 12 ? 500_000 : 0));
    expect(() => rateWith(tariff, readings, day.from, day.to)).toThrow(RatingError);
    try {
      rateWith(tariff, readings, day.from, day.to);
    } catch (err) {
      expect((err as RatingError).code).toBe('net_metering_not_rated');
      expect((err as RatingError).details).toEqual(['2018-07-02T19:00:00Z: exports']);
    }
  });
});
