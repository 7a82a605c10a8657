import { describe, expect, it } from 'vitest';
import { RatingError, rateWindow, resolveTariffTimeline, type TariffDocument } from './index.js';
import { flatTariff, linesOf, local, series } from './test-support.js';

const LA = 'America/Los_Angeles';
const JULY = { from: local(LA, '2026-07-01T00:00'), to: local(LA, '2026-08-01T00:00') };
const CHANGE = local(LA, '2026-07-11T00:00');

const tariffA = flatTariff({
  id: 'tariff-a',
  energy: {
    periods: [{ id: 'any', tiers: [{ max: '310', rate: '0.1' }, { rate: '0.2' }] }],
    schedule: [{ seasons: ['all'], dayTypes: ['weekday', 'weekend'], periods: [{ from: '00:00', period: 'any' }] }],
  },
  demand: { flat: [{ id: 'flat', seasons: ['all'], tiers: [{ rate: '10' }] }] },
  fixedCharges: [{ name: 'Service charge', amount: '31', per: 'month' }],
  taxes: [{ name: 'Tax', rate: '0.1' }],
});
const tariffB = flatTariff({
  id: 'tariff-b',
  energy: {
    periods: [{ id: 'any', tiers: [{ rate: '0.2' }] }],
    schedule: [{ seasons: ['all'], dayTypes: ['weekday', 'weekend'], periods: [{ from: '00:00', period: 'any' }] }],
  },
  demand: { flat: [{ id: 'flat', seasons: ['all'], tiers: [{ rate: '20' }] }] },
  fixedCharges: [{ name: 'Service charge', amount: '62', per: 'month' }],
  taxes: [
    { name: 'Tax', rate: '0.1' },
    { name: 'City tax', rate: '0.01' },
  ],
});

describe('a tariff assignment change mid-window', () => {
  // 1 kWh every hour; 8 kWh in one hour under A, 12 kWh in one hour under B.
  const readings = series(JULY.from, JULY.to, 3600, (start) =>
    start === local(LA, '2026-07-05T14:00') ? 8_000_000 : start === local(LA, '2026-07-20T14:00') ? 12_000_000 : 1_000_000,
  );
  const charges = rateWindow({
    tariffTimeline: [
      { from: local(LA, '2026-06-01T00:00'), tariff: tariffA },
      { from: CHANGE, tariff: tariffB },
    ],
    intervals: readings,
    billingWindow: JULY,
    billingCycle: JULY,
    meterIntervalSeconds: 3600,
  });

  it('rates each piece with its own tariff; tier limits, demand and monthly charges prorated by days (10/31, 21/31)', () => {
    // A: 10 of 31 days -> 0.322581; tier 1 = 310 x 0.322581 = 100.00011 kWh of A's 247 kWh.
    // B: 21 of 31 days -> 0.677419.
    expect(charges.lines).toEqual([
      { type: 'energy', period: 'any', tier: 1, quantity: '100.00011', unit: 'kWh', rate: '0.1', amount: '10.00', tariffId: 'tariff-a' },
      { type: 'energy', period: 'any', tier: 2, quantity: '146.99989', unit: 'kWh', rate: '0.2', amount: '29.40', tariffId: 'tariff-a' },
      {
        type: 'demand', period: 'flat', flatDemandPeriod: 'flat', tier: 1, quantity: '2.580648', unit: 'kW', rate: '10', amount: '25.81',
        tariffId: 'tariff-a', measuredKw: '8', prorationFactor: '0.322581',
      },
      { type: 'fixed', name: 'Service charge', quantity: '0.322581', unit: 'month', rate: '31', amount: '10.00', tariffId: 'tariff-a' },
      { type: 'energy', period: 'any', tier: 1, quantity: '515', unit: 'kWh', rate: '0.2', amount: '103.00', tariffId: 'tariff-b' },
      {
        type: 'demand', period: 'flat', flatDemandPeriod: 'flat', tier: 1, quantity: '8.129028', unit: 'kW', rate: '20', amount: '162.58',
        tariffId: 'tariff-b', measuredKw: '12', prorationFactor: '0.677419',
      },
      { type: 'fixed', name: 'Service charge', quantity: '0.677419', unit: 'month', rate: '62', amount: '42.00', tariffId: 'tariff-b' },
      // 'Tax' is in both tariffs: on the whole subtotal 382.79; 'City tax' only on B's 307.58.
      { type: 'tax', name: 'Tax', rate: '0.1', base: '382.79', amount: '38.28' },
      { type: 'tax', name: 'City tax', rate: '0.01', base: '307.58', amount: '3.08' },
    ]);
    expect([charges.subtotal, charges.taxes, charges.total]).toEqual(['382.79', '41.36', '424.15']);
  });

  it('reports the pieces and the tariffs in time order', () => {
    expect(charges.tariffIds).toEqual(['tariff-a', 'tariff-b']);
    expect(charges.pieces).toEqual([
      { from: '2026-07-01T07:00:00Z', to: '2026-07-11T07:00:00Z', tariffId: 'tariff-a', prorationFactor: '0.322581' },
      { from: '2026-07-11T07:00:00Z', to: '2026-08-01T07:00:00Z', tariffId: 'tariff-b', prorationFactor: '0.677419' },
    ]);
    expect(charges.coverage.expectedIntervals).toBe(744);
  });
});

describe('resolveTariffTimeline', () => {
  const version = (tariff: TariffDocument, effectiveFrom?: string): TariffDocument => ({ ...tariff, ...(effectiveFrom ? { effectiveFrom } : {}) });
  const a1 = version(tariffA);
  const a2 = version(tariffA, '2026-07-05T00:00:00-07:00');
  const b1 = version(tariffB, '2026-08-01T00:00:00-07:00');
  const assignments = [
    { tariffId: 'tariff-b', effectiveFrom: CHANGE },
    { tariffId: 'tariff-a', effectiveFrom: local(LA, '2026-06-01T00:00') },
  ];

  it('cuts each assignment where a new version of its tariff takes effect', () => {
    expect(resolveTariffTimeline(assignments, [b1, a2, a1])).toEqual([
      { from: local(LA, '2026-06-01T00:00'), to: local(LA, '2026-07-05T00:00'), tariff: a1 },
      { from: local(LA, '2026-07-05T00:00'), to: CHANGE, tariff: a2 },
      { from: local(LA, '2026-08-01T00:00'), to: Number.POSITIVE_INFINITY, tariff: b1 },
    ]);
  });

  it('leaves out spans without a version, so rating them fails and names them', () => {
    const timeline = resolveTariffTimeline(assignments, [b1, a2, a1]);
    const run = () => rateWindow({ tariffTimeline: timeline, intervals: [], billingWindow: JULY, meterIntervalSeconds: 900 });
    expect(run).toThrow(RatingError);
    try {
      run();
    } catch (error) {
      expect((error as RatingError).code).toBe('no_tariff_in_effect');
      expect((error as RatingError).details).toEqual(['2026-07-11T07:00:00.000Z to 2026-08-01T07:00:00.000Z']);
    }
  });

  it('rates the part of a window under each version with that version', () => {
    const cheaper = version(flatTariff({ id: 'v', fixedCharges: [{ name: 'Daily', amount: '1', per: 'day' }] }));
    const dearer = version(flatTariff({ id: 'v', fixedCharges: [{ name: 'Daily', amount: '2', per: 'day' }] }), '2026-07-21T00:00:00-07:00');
    const timeline = resolveTariffTimeline([{ tariffId: 'v', effectiveFrom: 0 }], [cheaper, dearer]);
    const charges = rateWindow({ tariffTimeline: timeline, intervals: [], billingWindow: JULY, meterIntervalSeconds: 900 });
    expect(linesOf(charges, 'fixed').map((l) => [l.quantity, l.amount])).toEqual([['20', '20.00'], ['11', '22.00']]);
    expect(charges.pieces.map((p) => p.tariffEffectiveFrom)).toEqual([undefined, '2026-07-21T00:00:00-07:00']);
  });

  it('refuses a window spanning tariffs in different currencies', () => {
    const euro = flatTariff({ id: 'eur', currency: { code: 'EUR', minorUnit: 2 } });
    const run = () =>
      rateWindow({
        tariffTimeline: [{ from: 0, tariff: flatTariff() }, { from: CHANGE, tariff: euro }],
        intervals: [],
        billingWindow: JULY,
        meterIntervalSeconds: 900,
      });
    expect(run).toThrow(expect.objectContaining({ code: 'currency_mismatch' }));
  });
});
