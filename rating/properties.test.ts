/**
 * Property-based tests over random tariffs and readings: the invariants of CONTRACT.md section 3 and of
 * the rating semantics hold whatever the tariff, zone, window and data.
 */
import Decimal from 'decimal.js';
import fc from 'fast-check';
import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import { classifyInterval, type Charges, type MeterInterval, type TariffDocument } from './index.js';
import type { ScheduleRule } from './tariff.schema.js';
import { energyKwhByPeriod, kwhText, linesOf, rateWith, referencePeriod } from './test-support.js';

const ZONES = ['America/Los_Angeles', 'Europe/London', 'Australia/Sydney', 'Asia/Kolkata', 'Asia/Kathmandu', 'UTC'];
const CURRENCIES = [
  { code: 'USD', minorUnit: 2 },
  { code: 'JPY', minorUnit: 0 },
  { code: 'KWD', minorUnit: 3 },
];

/** A decimal string with up to `decimals` decimals, from an integer of scaled units. */
const decimalText = (scaled: number, decimals: number, negative = false): string => {
  const digits = String(scaled).padStart(decimals + 1, '0');
  const text = decimals ? `${digits.slice(0, -decimals)}.${digits.slice(-decimals)}` : digits;
  return (negative && scaled !== 0 ? '-' : '') + text;
};
const price = fc.integer({ min: 0, max: 600_000 }).map((n) => decimalText(n, 6));
const hhmm = (minute: number) => `${String(Math.floor(minute / 60)).padStart(2, '0')}:${String(minute % 60).padStart(2, '0')}`;

const tiers = (maxLimit: number) =>
  fc
    .uniqueArray(fc.integer({ min: 1, max: maxLimit }), { maxLength: 2 })
    .chain((limits) =>
      fc.tuple(...[...limits.sort((a, b) => a - b), undefined].map((limit) => price.map((rate) => (limit ? { max: String(limit), rate } : { rate })))),
    );

const dayPeriods = (periodIds: string[]) =>
  fc
    .tuple(fc.uniqueArray(fc.integer({ min: 1, max: 1439 }), { maxLength: 4 }), fc.array(fc.constantFrom(...periodIds), { minLength: 5, maxLength: 5 }))
    .map(([starts, periods]) => [0, ...starts.sort((a, b) => a - b)].map((minute, i) => ({ from: hhmm(minute), period: periods[i] })));

const scheduleFor = (seasonIds: string[], periodIds: string[]) =>
  fc
    .array(fc.tuple(dayPeriods(periodIds), dayPeriods(periodIds), fc.option(dayPeriods(periodIds), { nil: undefined })), {
      minLength: seasonIds.length,
      maxLength: seasonIds.length,
    })
    .map((perSeason) =>
      perSeason.flatMap(([weekday, weekend, holiday], s): ScheduleRule[] => [
        { seasons: [seasonIds[s]], dayTypes: ['weekday'], periods: weekday },
        { seasons: [seasonIds[s]], dayTypes: ['weekend'], periods: weekend },
        ...(holiday ? [{ seasons: [seasonIds[s]], dayTypes: ['holiday' as const], periods: holiday }] : []),
      ]),
    );

const seasonsArb: fc.Arbitrary<TariffDocument['seasons']> = fc.oneof(
  fc.constant<TariffDocument['seasons']>([{ id: 'all', fromMonth: 1, toMonth: 12 }]),
  fc
    .tuple(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 11 }))
    .map(([start, length]) => {
      const split = ((start - 1 + length) % 12) + 1;
      return [
        { id: 'a', fromMonth: start, toMonth: ((split + 10) % 12) + 1 },
        { id: 'b', fromMonth: split, toMonth: ((start + 10) % 12) + 1 },
      ];
    }),
);

interface Options {
  holidays: boolean;
}

const tariffArb = ({ holidays }: Options): fc.Arbitrary<TariffDocument> =>
  fc
    .record({
      zone: fc.constantFrom(...ZONES),
      currency: fc.constantFrom(...CURRENCIES),
      seasons: seasonsArb,
      energyPeriodCount: fc.integer({ min: 1, max: 3 }),
      demandPeriodCount: fc.integer({ min: 0, max: 2 }),
      flat: fc.boolean(),
      windowMinutes: fc.constantFrom(undefined, 15),
      weekendDays: fc.constantFrom<number[] | undefined>(undefined, [5, 6], [7]),
      fixed: fc.array(fc.record({ amount: price, per: fc.constantFrom('day' as const, 'month' as const) }), { maxLength: 2 }),
      minimum: fc.option(fc.record({ amount: price, per: fc.constantFrom('day' as const, 'month' as const) }), { nil: undefined }),
      taxes: fc.array(fc.integer({ min: 0, max: 250_000 }).map((n) => decimalText(n, 6)), { maxLength: 2 }),
    })
    .chain((t) => {
      const seasonIds = t.seasons.map((s) => s.id);
      const energyIds = Array.from({ length: t.energyPeriodCount }, (_, i) => `e${i}`);
      const demandIds = Array.from({ length: t.demandPeriodCount }, (_, i) => `d${i}`);
      return fc
        .record({
          energyTiers: fc.array(tiers(400), { minLength: energyIds.length, maxLength: energyIds.length }),
          sells: fc.array(fc.option(price, { nil: undefined }), { minLength: energyIds.length, maxLength: energyIds.length }),
          energySchedule: scheduleFor(seasonIds, energyIds),
          demandTiers: fc.array(tiers(30), { minLength: demandIds.length, maxLength: demandIds.length }),
          demandSchedule: demandIds.length ? scheduleFor(seasonIds, demandIds) : fc.constant(undefined),
          flatTiers: tiers(30),
        })
        .map((r): TariffDocument => ({
          id: 'random',
          name: 'Random tariff',
          currency: t.currency,
          timeZone: t.zone,
          seasons: t.seasons,
          ...(t.weekendDays ? { weekendDays: t.weekendDays } : {}),
          ...(holidays
            ? {
                holidays: {
                  observance: { saturday: 'friday_before', sunday: 'monday_after' },
                  rules: [
                    { type: 'fixed', name: 'Fixed', month: 7, day: 4 },
                    { type: 'nth_weekday', name: 'Nth', month: 11, weekday: 4, nth: 4 },
                    { type: 'last_weekday', name: 'Last', month: 5, weekday: 1 },
                  ],
                },
              }
            : {}),
          energy: {
            periods: energyIds.map((id, i) => ({ id, tiers: r.energyTiers[i], ...(r.sells[i] ? { sell: r.sells[i] } : {}) })),
            schedule: r.energySchedule,
          },
          ...(demandIds.length || t.flat
            ? {
                demand: {
                  ...(t.windowMinutes ? { windowMinutes: t.windowMinutes } : {}),
                  ...(r.demandSchedule ? { periods: demandIds.map((id, i) => ({ id, tiers: r.demandTiers[i] })), schedule: r.demandSchedule } : {}),
                  ...(t.flat ? { flat: [{ id: 'flat', seasons: seasonIds, tiers: r.flatTiers }] } : {}),
                },
              }
            : {}),
          fixedCharges: t.fixed.map((f, i) => ({ name: `Fixed ${i}`, ...f })),
          ...(t.minimum ? { minimumCharge: t.minimum } : {}),
          taxes: t.taxes.map((rate, i) => ({ name: `Tax ${i}`, rate })),
        }));
    });

interface Scenario {
  tariff: TariffDocument;
  from: number;
  to: number;
  seconds: number;
  intervals: MeterInterval[];
}

/** A window of whole local days in the tariff's zone, with gaps, estimates and export. */
const scenarioArb = (options: Options): fc.Arbitrary<Scenario> =>
  fc
    .record({
      tariff: tariffArb(options),
      startDay: fc.integer({ min: 0, max: 364 }),
      days: fc.integer({ min: 1, max: 35 }),
      seconds: fc.constantFrom(900, 1800, 3600),
      seed: fc.integer({ min: 1, max: 2 ** 30 }),
    })
    .map(({ tariff, startDay, days, seconds, seed }) => {
      const start = DateTime.fromObject({ year: 2026, month: 1, day: 1 }, { zone: tariff.timeZone }).plus({ days: startDay });
      const from = start.toMillis();
      const to = start.plus({ days }).toMillis();
      let state = seed;
      const random = () => {
        state = (state * 48271) % 2147483647;
        return state / 2147483647;
      };
      const intervals: MeterInterval[] = [];
      for (let t = from; t < to; t += seconds * 1000) {
        if (random() < 0.05) continue;
        intervals.push({
          intervalStart: t,
          intervalSeconds: seconds,
          importMwh: Math.floor(random() * 4_000_000),
          exportMwh: random() < 0.3 ? Math.floor(random() * 1_500_000) : 0,
          quality: random() < 0.05 ? 'estimated' : 'actual',
        });
      }
      return { tariff, from, to, seconds, intervals };
    });

const rate = (s: Scenario, from = s.from, to = s.to): Charges => rateWith(s.tariff, s.intervals, from, to, { meterIntervalSeconds: s.seconds });

const RUNS = { numRuns: 60 };

describe('properties of rating', () => {
  it('total = subtotal + taxes; subtotal = sum of the other lines; every amount = quantity x rate rounded half-up', () => {
    fc.assert(
      fc.property(scenarioArb({ holidays: true }), (s) => {
        const charges = rate(s);
        const minorUnit = s.tariff.currency.minorUnit;
        const round = (d: Decimal) => d.toDecimalPlaces(minorUnit, Decimal.ROUND_HALF_UP);
        let subtotal = new Decimal(0);
        let taxes = new Decimal(0);
        for (const line of charges.lines) {
          expect(line.amount).toMatch(minorUnit ? new RegExp(`^-?\\d+\\.\\d{${minorUnit}}$`) : /^-?\d+$/);
          if (line.type === 'tax') {
            expect(line.amount).toBe(round(new Decimal(line.base).mul(line.rate)).toFixed(minorUnit));
            taxes = taxes.plus(line.amount);
            continue;
          }
          subtotal = subtotal.plus(line.amount);
          if (line.type === 'minimum') continue;
          const product = round(new Decimal(line.quantity).mul(line.rate));
          expect(line.amount).toBe((line.type === 'export_credit' ? product.neg() : product).toFixed(minorUnit));
        }
        for (const tax of linesOf(charges, 'tax')) expect(tax.base).toBe(charges.subtotal);
        expect(charges.subtotal).toBe(subtotal.toFixed(minorUnit));
        expect(charges.taxes).toBe(taxes.toFixed(minorUnit));
        expect(charges.total).toBe(subtotal.plus(taxes).toFixed(minorUnit));
        const imported = s.intervals.reduce((sum, i) => sum + BigInt(i.importMwh), 0n);
        const billed = Object.values(energyKwhByPeriod(charges)).reduce((sum, kwh) => sum.plus(kwh), new Decimal(0));
        expect(billed.toFixed()).toBe(kwhText(imported));
      }),
      RUNS,
    );
  });

  it('splitting a window into local days never changes the energy or export quantities of a period', () => {
    fc.assert(
      fc.property(scenarioArb({ holidays: true }), (s) => {
        const whole = rate(s);
        const byDay: Record<string, Decimal> = {};
        const exportByDay: Record<string, Decimal> = {};
        for (let day = DateTime.fromMillis(s.from, { zone: s.tariff.timeZone }); day.toMillis() < s.to; day = day.plus({ days: 1 })) {
          const charges = rate(s, day.toMillis(), day.plus({ days: 1 }).toMillis());
          for (const [period, kwh] of Object.entries(energyKwhByPeriod(charges))) byDay[period] = (byDay[period] ?? new Decimal(0)).plus(kwh);
          for (const line of linesOf(charges, 'export_credit'))
            exportByDay[line.period] = (exportByDay[line.period] ?? new Decimal(0)).plus(line.quantity);
        }
        const asText = (sums: Record<string, Decimal>) => Object.fromEntries(Object.entries(sums).map(([p, d]) => [p, d.toFixed()]));
        expect(asText(byDay)).toEqual(energyKwhByPeriod(whole));
        expect(asText(exportByDay)).toEqual(Object.fromEntries(linesOf(whole, 'export_credit').map((l) => [l.period, l.quantity])));
      }),
      { numRuns: 25 },
    );
  });

  it('demand equals the maximum interval demand, overall (flat) and per demand period', () => {
    fc.assert(
      fc.property(scenarioArb({ holidays: true }), (s) => {
        const charges = rate(s);
        const kw = (i: MeterInterval) => new Decimal(String(i.importMwh)).mul(3600 / s.seconds).div(1_000_000);
        const maxOf = (intervals: MeterInterval[]) => intervals.reduce((max, i) => Decimal.max(max, kw(i)), new Decimal(0));
        const billed = (predicate: (period: string) => boolean) =>
          linesOf(charges, 'demand')
            .filter((l) => predicate(l.period))
            .reduce((sum, l) => sum.plus(l.quantity), new Decimal(0));
        if (s.tariff.demand?.flat) expect(billed((p) => p === 'flat').toFixed()).toBe(maxOf(s.intervals).toFixed());
        for (const period of s.tariff.demand?.periods ?? []) {
          const inPeriod = s.intervals.filter((i) => classifyInterval(s.tariff, i.intervalStart).demandPeriod === period.id);
          expect(billed((p) => p === period.id).toFixed()).toBe(maxOf(inPeriod).toFixed());
        }
      }),
      RUNS,
    );
  });

  it('is deterministic and independent of the order of the input intervals', () => {
    fc.assert(
      fc.property(scenarioArb({ holidays: true }), fc.integer(), (s, salt) => {
        const shuffled = [...s.intervals].sort((a, b) => ((a.intervalStart ^ salt) % 7) - ((b.intervalStart ^ salt) % 7));
        expect(rateWith(s.tariff, shuffled, s.from, s.to, { meterIntervalSeconds: s.seconds })).toEqual(rate(s));
        expect(rate(s)).toEqual(rate(s));
      }),
      { numRuns: 30 },
    );
  });

  it('classifies every interval like a naive luxon-based reference', () => {
    fc.assert(
      fc.property(tariffArb({ holidays: false }), fc.array(fc.integer({ min: 0, max: 365 * 96 - 1 }), { minLength: 50, maxLength: 50 }), (tariff, quarters) => {
        const yearStart = Date.UTC(2026, 0, 1);
        for (const quarter of quarters) {
          const instant = yearStart + quarter * 900_000;
          expect(classifyInterval(tariff, instant).period).toBe(referencePeriod(tariff, instant));
        }
      }),
      RUNS,
    );
  });
});
