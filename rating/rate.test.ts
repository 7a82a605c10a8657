import { describe, expect, it } from 'vitest';
import { exampleDynamicTariff, RatingError, rateWindow, type MeterInterval, type TariffDocument } from './index.js';
import { always, at, energyKwhByPeriod, flatTariff, kwhText, linesOf, local, rateWith, referencePeriod, series } from './test-support.js';

const LA = 'America/Los_Angeles';

function expectRatingError(run: () => unknown, code: string, detail?: RegExp): void {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(RatingError);
    expect((error as RatingError).code).toBe(code);
    if (detail) expect((error as RatingError).details.join('\n')).toMatch(detail);
    return;
  }
  expect.fail(`expected RatingError ${code}`);
}

describe('energy tiers', () => {
  // 0.25 kWh every 15 minutes = 24 kWh a day: the 300 kWh of tier 1 are used up at noon on 13 June.
  const tariff = flatTariff({
    energy: {
      periods: [{ id: 'any', tiers: [{ max: '300', rate: '0.2', adj: '0.01' }, { rate: '0.3' }] }],
      schedule: [{ seasons: ['all'], dayTypes: ['weekday', 'weekend'], periods: [{ from: '00:00', period: 'any' }] }],
    },
  });
  const june = series(local(LA, '2026-06-01T00:00'), local(LA, '2026-07-01T00:00'), 900, () => 250_000);

  it('fills tier 1 then tier 2 when the limit is crossed mid-month', () => {
    const charges = rateWith(tariff, june, local(LA, '2026-06-01T00:00'), local(LA, '2026-07-01T00:00'));
    expect(linesOf(charges, 'energy')).toEqual([
      { type: 'energy', period: 'any', tier: 1, quantity: '300', unit: 'kWh', rate: '0.21', amount: '63.00', tariffId: 'flat' },
      { type: 'energy', period: 'any', tier: 2, quantity: '420', unit: 'kWh', rate: '0.3', amount: '126.00', tariffId: 'flat' },
    ]);
    expect(charges.subtotal).toBe('189.00');
    expect(charges.total).toBe('189.00');
  });

  it('counts tier usage within the billing window only', () => {
    const firstTwelveDays = rateWith(tariff, june, local(LA, '2026-06-01T00:00'), local(LA, '2026-06-13T00:00'));
    expect(linesOf(firstTwelveDays, 'energy').map((l) => [l.tier, l.quantity])).toEqual([[1, '288']]);
    const firstThirteenDays = rateWith(tariff, june, local(LA, '2026-06-01T00:00'), local(LA, '2026-06-14T00:00'));
    expect(linesOf(firstThirteenDays, 'energy').map((l) => [l.tier, l.quantity])).toEqual([[1, '300'], [2, '12']]);
    const secondHalf = rateWith(tariff, june, local(LA, '2026-06-16T00:00'), local(LA, '2026-07-01T00:00'));
    expect(linesOf(secondHalf, 'energy').map((l) => [l.tier, l.quantity])).toEqual([[1, '300'], [2, '60']]);
  });
});

describe('rounding', () => {
  const oneInterval = (importMwh: number, exportMwh = 0): MeterInterval[] => [
    { intervalStart: at('2026-06-10T19:00:00Z'), intervalSeconds: 900, importMwh, exportMwh, quality: 'actual' },
  ];
  const window = [at('2026-06-10T19:00:00Z'), at('2026-06-10T19:15:00Z')] as const;

  it('rounds a line half-up: 0.5 kWh x 0.05 = 0.025 -> 0.03, and a tax tie 0.03 x 0.5 = 0.015 -> 0.02', () => {
    const tariff = flatTariff({
      energy: {
        periods: [{ id: 'any', tiers: [{ rate: '0.05' }] }],
        schedule: [{ seasons: ['all'], dayTypes: ['weekday', 'weekend'], periods: [{ from: '00:00', period: 'any' }] }],
      },
      taxes: [{ name: 'Half', rate: '0.5' }],
    });
    const charges = rateWith(tariff, oneInterval(500_000), ...window);
    expect(linesOf(charges, 'energy')[0].amount).toBe('0.03');
    expect(linesOf(charges, 'tax')).toEqual([{ type: 'tax', name: 'Half', rate: '0.5', base: '0.03', amount: '0.02' }]);
    expect([charges.subtotal, charges.taxes, charges.total]).toEqual(['0.03', '0.02', '0.05']);
  });

  it('rounds a credit away from zero: 0.5 kWh exported at 0.05 = -0.025 -> -0.03', () => {
    const tariff = flatTariff({
      energy: {
        periods: [{ id: 'any', tiers: [{ rate: '0.05' }], sell: '0.05' }],
        schedule: [{ seasons: ['all'], dayTypes: ['weekday', 'weekend'], periods: [{ from: '00:00', period: 'any' }] }],
      },
    });
    const charges = rateWith(tariff, oneInterval(0, 500_000), ...window);
    expect(linesOf(charges, 'export_credit')).toEqual([
      { type: 'export_credit', period: 'any', quantity: '0.5', unit: 'kWh', rate: '0.05', amount: '-0.03', tariffId: 'flat' },
    ]);
    expect(charges.total).toBe('-0.03');
  });

  it('is exact where binary floats are not: 1.005 kWh x 1 = 1.01', () => {
    const tariff = flatTariff({
      energy: {
        periods: [{ id: 'any', tiers: [{ rate: '1' }] }],
        schedule: [{ seasons: ['all'], dayTypes: ['weekday', 'weekend'], periods: [{ from: '00:00', period: 'any' }] }],
      },
    });
    expect(Math.round(1.005 * 100) / 100).toBe(1); // the float answer
    expect(linesOf(rateWith(tariff, oneInterval(1_005_000), ...window), 'energy')[0].amount).toBe('1.01');
  });

  it('rounds to the currency minor unit: JPY 0 decimals, KWD 3', () => {
    const priced = (code: string, minorUnit: number, rate: string, importMwh: number) =>
      rateWith(
        flatTariff({
          currency: { code, minorUnit },
          energy: {
            periods: [{ id: 'any', tiers: [{ rate }] }],
            schedule: [{ seasons: ['all'], dayTypes: ['weekday', 'weekend'], periods: [{ from: '00:00', period: 'any' }] }],
          },
        }),
        oneInterval(importMwh),
        ...window,
      );
    const yen = priced('JPY', 0, '27', 12_500_000); // 12.5 kWh x 27 = 337.5
    expect([linesOf(yen, 'energy')[0].amount, yen.total, yen.currency]).toEqual(['338', '338', 'JPY']);
    const dinar = priced('KWD', 3, '0.0125', 1_000_000); // 1 kWh x 0.0125 = 0.0125
    expect(dinar.total).toBe('0.013');
  });

  it('rounds each tax on the subtotal separately', () => {
    // 100.5 kWh x 0.1 = 10.05; 10.05 x 0.0725 = 0.728625 -> 0.73; 10.05 x 0.003 = 0.03015 -> 0.03.
    const tariff = flatTariff({ taxes: [{ name: 'Sales tax', rate: '0.0725' }, { name: 'Surcharge', rate: '0.003' }] });
    const charges = rateWith(tariff, oneInterval(100_500_000), ...window);
    expect(linesOf(charges, 'tax').map((t) => t.amount)).toEqual(['0.73', '0.03']);
    expect([charges.subtotal, charges.taxes, charges.total]).toEqual(['10.05', '0.76', '10.81']);
  });
});

describe('export credit', () => {
  it('credits export per period at its sell rate and nothing in a period without one; imports stay gross', () => {
    const tariff = flatTariff({
      energy: {
        periods: [
          { id: 'day', tiers: [{ rate: '0.3' }], sell: '0.07' },
          { id: 'night', tiers: [{ rate: '0.1' }] },
        ],
        schedule: [
          {
            seasons: ['all'],
            dayTypes: ['weekday', 'weekend'],
            periods: [
              { from: '00:00', period: 'night' },
              { from: '06:30', period: 'day' },
              { from: '18:30', period: 'night' },
            ],
          },
        ],
      },
    });
    // One day, hourly: 1 kWh imported every hour, 2 kWh exported every hour.
    const from = local(LA, '2026-06-10T00:00');
    const to = local(LA, '2026-06-11T00:00');
    const charges = rateWith(tariff, series(from, to, 3600, () => 1_000_000, () => 2_000_000), from, to);
    // Hour starts 07..18 are 'day' (06:00 starts before 06:30): 12 hours; 12 'night'.
    expect(linesOf(charges, 'energy').map((l) => [l.period, l.quantity, l.amount])).toEqual([
      ['day', '12', '3.60'],
      ['night', '12', '1.20'],
    ]);
    expect(linesOf(charges, 'export_credit')).toEqual([
      { type: 'export_credit', period: 'day', quantity: '24', unit: 'kWh', rate: '0.07', amount: '-1.68', tariffId: 'flat' },
    ]);
    expect(charges.subtotal).toBe('3.12');
  });
});

describe('DST months', () => {
  /** Peak 16:30-21:00 on weekdays, a one-hour 'night' period at 01:00, a daily charge of 1. */
  const touIn = (timeZone: string): TariffDocument =>
    flatTariff({
      timeZone,
      energy: {
        periods: [
          { id: 'off', tiers: [{ rate: '0.1' }] },
          { id: 'night', tiers: [{ rate: '0.05' }] },
          { id: 'peak', tiers: [{ rate: '0.3' }] },
        ],
        schedule: [
          {
            seasons: ['all'],
            dayTypes: ['weekday'],
            periods: [
              { from: '00:00', period: 'off' },
              { from: '01:00', period: 'night' },
              { from: '02:00', period: 'off' },
              { from: '16:30', period: 'peak' },
              { from: '21:00', period: 'off' },
            ],
          },
          {
            seasons: ['all'],
            dayTypes: ['weekend'],
            periods: [
              { from: '00:00', period: 'off' },
              { from: '01:00', period: 'night' },
              { from: '02:00', period: 'off' },
            ],
          },
        ],
      },
      fixedCharges: [{ name: 'Daily charge', amount: '1', per: 'day' }],
    });

  const months: [string, string, string, number, number][] = [
    // zone, first local day, first day of next month, expected 15-minute intervals, local days
    [LA, '2026-03-01', '2026-04-01', 31 * 96 - 4, 31],
    [LA, '2026-11-01', '2026-12-01', 30 * 96 + 4, 30],
    ['Europe/London', '2026-03-01', '2026-04-01', 31 * 96 - 4, 31],
    ['Europe/London', '2026-10-01', '2026-11-01', 31 * 96 + 4, 31],
    ['Australia/Sydney', '2026-04-01', '2026-05-01', 30 * 96 + 4, 30],
    ['Australia/Sydney', '2026-10-01', '2026-11-01', 31 * 96 - 4, 31],
    ['Asia/Kolkata', '2026-03-01', '2026-04-01', 31 * 96, 31],
  ];

  it.each(months)('%s %s: every interval of the local month rated by its local time', (zone, first, next, expected, days) => {
    const tariff = touIn(zone);
    const from = local(zone, `${first}T00:00`);
    const to = local(zone, `${next}T00:00`);
    const intervals = series(from, to, 900, (_, i) => 1_000 + (i % 97) * 1_001);
    const charges = rateWith(tariff, intervals, from, to);

    expect(charges.coverage).toEqual({ expectedIntervals: expected, actualIntervals: expected, estimatedIntervals: 0, missingIntervals: 0 });
    const reference: Record<string, bigint> = {};
    for (const interval of intervals) {
      const period = referencePeriod(tariff, interval.intervalStart);
      reference[period] = (reference[period] ?? 0n) + BigInt(interval.importMwh);
    }
    expect(energyKwhByPeriod(charges)).toEqual(Object.fromEntries(Object.entries(reference).map(([p, mwh]) => [p, kwhText(mwh)])));
    expect(linesOf(charges, 'fixed')[0]).toMatchObject({ quantity: String(days), amount: `${days}.00` });
    expect(charges.asOf).toBe(new Date(to).toISOString().replace('.000Z', 'Z'));
  });

  it('rates the repeated hour of the fall-back day twice: 8 quarter hours in the 01:00 period', () => {
    const tariff = touIn(LA);
    const from = local(LA, '2026-11-01T00:00');
    const to = local(LA, '2026-11-02T00:00');
    const charges = rateWith(tariff, series(from, to, 900, () => 1_000_000), from, to);
    expect(charges.coverage.expectedIntervals).toBe(100);
    expect(energyKwhByPeriod(charges)).toEqual({ off: '92', night: '8' });
    expect(linesOf(charges, 'fixed')[0].quantity).toBe('1');
  });

  it('has no intervals in the missing hour of the spring-forward day: 92 quarter hours, none at 01:00, one day', () => {
    const tariff = touIn('Europe/London');
    const from = local('Europe/London', '2026-03-29T00:00');
    const to = local('Europe/London', '2026-03-30T00:00');
    const charges = rateWith(tariff, series(from, to, 900, () => 1_000_000), from, to);
    expect(charges.coverage.expectedIntervals).toBe(92);
    // Clocks go from 01:00 GMT to 02:00 BST: the 01:00-02:00 'night' period does not exist that day.
    expect(energyKwhByPeriod(charges)).toEqual({ off: '92' });
    expect(linesOf(charges, 'fixed')[0].quantity).toBe('1');
  });
});

describe('fixed and minimum charges', () => {
  const monthly = (extra: Partial<TariffDocument> = {}) =>
    flatTariff({ fixedCharges: [{ name: 'Meter charge', amount: '12', per: 'month' }], ...extra });
  const noReadings: MeterInterval[] = [];

  it('charges a monthly charge x 1 for a whole billing cycle and prorates it by days otherwise', () => {
    const cycle = { from: local(LA, '2026-06-15T00:00'), to: local(LA, '2026-07-15T00:00') };
    const whole = rateWith(monthly(), noReadings, cycle.from, cycle.to, { meterIntervalSeconds: 900, billingCycle: cycle });
    expect(linesOf(whole, 'fixed')).toEqual([
      { type: 'fixed', name: 'Meter charge', quantity: '1', unit: 'month', rate: '12', amount: '12.00', tariffId: 'flat' },
    ]);
    const half = rateWith(monthly(), noReadings, cycle.from, local(LA, '2026-06-30T00:00'), { meterIntervalSeconds: 900, billingCycle: cycle });
    expect(linesOf(half, 'fixed')[0]).toMatchObject({ quantity: '0.5', amount: '6.00' }); // 15 of 30 days
  });

  it('prorates per local calendar month without a billing cycle', () => {
    // 16 Jun..15 Jul: 15/30 + 15/31 = 0.983870967... -> 0.983871 month; x 12 = 11.806452 -> 11.81.
    const charges = rateWith(monthly(), noReadings, local(LA, '2026-06-16T00:00'), local(LA, '2026-07-16T00:00'), { meterIntervalSeconds: 900 });
    expect(linesOf(charges, 'fixed')[0]).toMatchObject({ quantity: '0.983871', amount: '11.81' });
    const february = rateWith(monthly(), noReadings, local(LA, '2026-02-01T00:00'), local(LA, '2026-03-01T00:00'), { meterIntervalSeconds: 900 });
    expect(linesOf(february, 'fixed')[0].quantity).toBe('1');
  });

  it('charges a daily charge per local calendar day: 31 x 0.98563 = 30.55453 -> 30.55', () => {
    const daily = flatTariff({ fixedCharges: [{ name: 'Customer charge', amount: '0.98563', per: 'day' }] });
    const charges = rateWith(daily, noReadings, local(LA, '2026-03-01T00:00'), local(LA, '2026-04-01T00:00'), { meterIntervalSeconds: 900 });
    expect(linesOf(charges, 'fixed')[0]).toMatchObject({ quantity: '31', unit: 'day', amount: '30.55' });
  });

  it('adds a minimum line for the difference and taxes the raised subtotal', () => {
    const tariff = flatTariff({ minimumCharge: { amount: '25', per: 'month' }, taxes: [{ name: 'Tax', rate: '0.1' }] });
    const from = local(LA, '2026-06-01T00:00');
    const to = local(LA, '2026-07-01T00:00');
    const readings = [{ intervalStart: from, intervalSeconds: 900, importMwh: 10_000_000, exportMwh: 0, quality: 'actual' as const }];
    const charges = rateWith(tariff, readings, from, to);
    expect(linesOf(charges, 'minimum')).toEqual([{ type: 'minimum', minimum: '25.00', amount: '24.00', tariffId: 'flat' }]);
    expect([charges.subtotal, charges.taxes, charges.total]).toEqual(['25.00', '2.50', '27.50']);
    const busy = rateWith(tariff, [{ ...readings[0], importMwh: 300_000_000 }], from, to);
    expect(linesOf(busy, 'minimum')).toEqual([]);
    expect(busy.subtotal).toBe('30.00');
  });
});

describe('coverage and asOf', () => {
  it('counts actual, estimated and missing intervals; asOf is the end of the latest interval', () => {
    const from = local(LA, '2026-06-10T00:00');
    const to = local(LA, '2026-06-11T00:00');
    const all = series(from, to, 900, () => 1_000);
    const readings = all
      .filter((_, i) => i !== 10 && i !== 11 && i !== 95)
      .map((interval, i) => (i < 3 ? { ...interval, quality: 'estimated' as const } : interval));
    const charges = rateWith(flatTariff(), readings, from, to);
    expect(charges.coverage).toEqual({ expectedIntervals: 96, actualIntervals: 90, estimatedIntervals: 3, missingIntervals: 3 });
    expect(charges.asOf).toBe(new Date(to - 15 * 60_000).toISOString().replace('.000Z', 'Z'));
    expect(rateWith(flatTariff(), [], from, to, { meterIntervalSeconds: 900 }).asOf).toBeNull();
  });

  it('ignores intervals outside the window ([from, to) on intervalStart)', () => {
    const from = local(LA, '2026-06-10T00:00');
    const to = local(LA, '2026-06-10T01:00');
    const readings = series(from - 3_600_000, to + 3_600_000, 900, () => 1_000_000);
    const charges = rateWith(flatTariff(), readings, from, to);
    expect(energyKwhByPeriod(charges)).toEqual({ any: '4' });
  });
});

describe('dynamic prices', () => {
  it('prices each interval at its half-hourly slot, one line per price, negative prices included', () => {
    const from = at('2026-01-15T00:00:00Z');
    const to = at('2026-01-15T02:00:00Z');
    const wh = [100, 200, 300, 400, 500, 600, 700, 800];
    const charges = rateWith(exampleDynamicTariff, series(from, to, 900, (_, i) => wh[i] * 1000), from, to);
    expect(charges.lines).toEqual([
      { type: 'energy', period: 'dynamic', tier: 1, quantity: '0.3', unit: 'kWh', rate: '0.1512', amount: '0.05', tariffId: 'agile-like-2026-01' },
      { type: 'energy', period: 'dynamic', tier: 1, quantity: '0.7', unit: 'kWh', rate: '0.0987', amount: '0.07', tariffId: 'agile-like-2026-01' },
      { type: 'energy', period: 'dynamic', tier: 1, quantity: '1.1', unit: 'kWh', rate: '-0.0214', amount: '-0.02', tariffId: 'agile-like-2026-01' },
      { type: 'energy', period: 'dynamic', tier: 1, quantity: '1.5', unit: 'kWh', rate: '0.0451', amount: '0.07', tariffId: 'agile-like-2026-01' },
      { type: 'fixed', name: 'Standing charge', quantity: '1', unit: 'day', rate: '0.4854', amount: '0.49', tariffId: 'agile-like-2026-01' },
      { type: 'tax', name: 'VAT', rate: '0.05', base: '0.66', amount: '0.03' },
    ]);
    expect([charges.subtotal, charges.taxes, charges.total, charges.currency]).toEqual(['0.66', '0.03', '0.69', 'GBP']);
  });

  it('refuses intervals without a price, and intervals longer than a slot', () => {
    const from = at('2026-01-15T01:30:00Z');
    const to = at('2026-01-15T03:00:00Z');
    expectRatingError(() => rateWith(exampleDynamicTariff, series(from, to, 900, () => 1_000), from, to), 'missing_dynamic_price', /02:00:00.000Z[\s\S]*02:45/);
    const hourly = series(at('2026-01-15T00:00:00Z'), at('2026-01-15T02:00:00Z'), 3600, () => 1_000);
    expectRatingError(() => rateWith(exampleDynamicTariff, hourly, at('2026-01-15T00:00:00Z'), at('2026-01-15T02:00:00Z')), 'interval_spans_price_slots');
  });
});

describe('refusals', () => {
  const from = local(LA, '2026-06-10T00:00');
  const to = local(LA, '2026-06-11T00:00');

  it('refuses overlapping or duplicate intervals', () => {
    const readings = series(from, to, 900, () => 1_000);
    expectRatingError(() => rateWith(flatTariff(), [...readings, readings[5]], from, to), 'overlapping_intervals');
  });

  it('refuses an interval length other than the meter interval, and malformed energy', () => {
    const readings = series(from, to, 900, () => 1_000);
    expectRatingError(() => rateWith(flatTariff(), readings, from, to, { meterIntervalSeconds: 300 }), 'invalid_interval', /meter interval 300/);
    const fractional = [{ ...readings[0], importMwh: 1.5 }];
    expectRatingError(() => rateWith(flatTariff(), fractional, from, to), 'invalid_interval', /integers/);
  });

  it('refuses a window with a part no tariff covers, naming the part', () => {
    const run = () =>
      rateWindow({
        tariffTimeline: [{ from: local(LA, '2026-06-10T12:00'), tariff: flatTariff() }],
        intervals: [],
        billingWindow: { from, to },
        meterIntervalSeconds: 900,
      });
    expectRatingError(run, 'no_tariff_in_effect', /2026-06-10T07:00:00.000Z to 2026-06-10T19:00:00.000Z/);
  });

  it('refuses an empty window and a cycle that does not contain the window', () => {
    expectRatingError(() => rateWith(flatTariff(), [], to, from, { meterIntervalSeconds: 900 }), 'invalid_window');
    expectRatingError(
      () => rateWith(flatTariff(), [], from, to, { meterIntervalSeconds: 900, billingCycle: { from: from + 1, to } }),
      'invalid_window',
    );
  });

  it('is deterministic and independent of the order of the intervals', () => {
    const readings = series(from, to, 900, (_, i) => (i * 7919) % 5000);
    const sorted = rateWindow({ tariffTimeline: always(flatTariff()), intervals: readings, billingWindow: { from, to }, meterIntervalSeconds: 900 });
    const reversed = rateWindow({ tariffTimeline: always(flatTariff()), intervals: [...readings].reverse(), billingWindow: { from, to }, meterIntervalSeconds: 900 });
    expect(reversed).toEqual(sorted);
  });
});
