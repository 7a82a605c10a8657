/**
 * Tier scope (CONTRACT section 4): window tiers count the cumulative import of the whole window across all
 * periods, filled in time order; period tiers count each period's own. Checked against a reference written
 * independently of the core (each interval's energy [C, C + e) intersected with its period's tier ranges),
 * and by properties: one period rates the same under both scopes; the kWh per tier of a window are those
 * of any prefix plus what the rest adds, so splitting a window at any interval boundary loses or moves no
 * kWh; the number and bigint paths agree.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { MeterInterval, TariffDocument } from './index.js';
import { exactArithmetic } from './mwh.js';
import { kwhText, linesOf, rateWith, series } from './test-support.js';

const ZONE = 'America/Los_Angeles';
const FROM = Date.parse('2026-03-02T08:00:00Z'); // Monday 2 March 2026, local midnight

interface Case {
  tariff: TariffDocument;
  intervals: MeterInterval[];
  to: number;
}

/** 1-3 periods over the hours of the day, each with 1-3 tiers; 15-minute imports over 1-6 days. */
const caseArb = (scope: 'window' | 'period', periodCount?: number) =>
  fc
    .record({
      periods: periodCount ? fc.constant(periodCount) : fc.integer({ min: 1, max: 3 }),
      hours: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 24, maxLength: 24 }),
      limits: fc.array(fc.uniqueArray(fc.integer({ min: 1, max: 400 }), { maxLength: 2 }), { minLength: 3, maxLength: 3 }),
      days: fc.integer({ min: 1, max: 6 }),
      energies: fc.array(fc.integer({ min: 0, max: 3_000_000 }), { minLength: 96, maxLength: 96 }),
    })
    .map(({ periods, hours, limits, days, energies }): Case => {
      const ids = ['a', 'b', 'c'].slice(0, periods);
      const starts = hours.flatMap((h, hour) =>
        hour > 0 && hours[hour - 1] % periods === h % periods ? [] : [{ from: `${String(hour).padStart(2, '0')}:00`, period: ids[h % periods] }],
      );
      const tariff: TariffDocument = {
        id: 'tiers',
        name: 'Tiers',
        currency: { code: 'USD', minorUnit: 2 },
        timeZone: ZONE,
        seasons: [{ id: 'all', fromMonth: 1, toMonth: 12 }],
        energy: {
          tierScope: scope,
          periods: ids.map((id, p) => ({
            id,
            tiers: [...[...limits[p]].sort((x, y) => x - y).map((max, t) => ({ max: String(max), rate: `0.${p + 1}${t}` })), { rate: `0.${p + 1}9` }],
          })),
          schedule: [{ seasons: ['all'], dayTypes: ['weekday', 'weekend'], periods: starts }],
        },
      };
      const to = FROM + days * 86_400_000;
      return { tariff, intervals: series(FROM, to, 900, (_, i) => energies[i % 96] + i), to };
    });

/** mWh per "period/tier" from the energy lines. */
function tierMwh(tariff: TariffDocument, intervals: MeterInterval[], to: number): Map<string, bigint> {
  const result = new Map<string, bigint>();
  for (const line of linesOf(rateWith(tariff, intervals, FROM, to), 'energy')) {
    const [whole, fraction = ''] = line.quantity.split('.');
    result.set(`${line.period}/${line.tier}`, BigInt(whole) * 1_000_000n + BigInt(fraction.padEnd(6, '0')));
  }
  return result;
}

/** The reference: each interval's [C, C + e) intersected with the tier ranges of its period. */
function referenceMwh(tariff: TariffDocument, intervals: MeterInterval[], to: number): Map<string, bigint> {
  const energy = tariff.energy!;
  const periodAt = (start: number) => {
    const hour = Number(new Intl.DateTimeFormat('en-GB', { timeZone: ZONE, hour: '2-digit', hourCycle: 'h23' }).format(start));
    let period = energy.schedule[0].periods[0].period;
    for (const s of energy.schedule[0].periods) if (Number(s.from.slice(0, 2)) <= hour) period = s.period;
    return period;
  };
  const result = new Map<string, bigint>();
  const positions = new Map<string, bigint>();
  for (const interval of intervals) {
    if (interval.intervalStart >= to) continue;
    const id = periodAt(interval.intervalStart);
    const key = energy.tierScope === 'period' ? id : 'window';
    const c = positions.get(key) ?? 0n;
    const e = BigInt(interval.importMwh);
    positions.set(key, c + e);
    let lower = 0n;
    const tiers = energy.periods.find((p) => p.id === id)!.tiers;
    tiers.forEach((tier, t) => {
      const upper = tier.max === undefined ? null : BigInt(tier.max) * 1_000_000n;
      const from = c > lower ? c : lower;
      const until = upper === null ? c + e : c + e < upper ? c + e : upper;
      if (until > from) result.set(`${id}/${t + 1}`, (result.get(`${id}/${t + 1}`) ?? 0n) + until - from);
      if (upper !== null && upper > lower) lower = upper;
    });
  }
  return result;
}

const sum = (m: Map<string, bigint>) => [...m.values()].reduce((a, b) => a + b, 0n);

describe('tier scope', () => {
  it('window and period tiers equal the independent reference', () => {
    fc.assert(
      fc.property(fc.constantFrom('window' as const, 'period' as const).chain((scope) => caseArb(scope)), ({ tariff, intervals, to }) => {
        expect(tierMwh(tariff, intervals, to)).toEqual(referenceMwh(tariff, intervals, to));
      }),
      { numRuns: 60 },
    );
  });

  it('a one-period tariff rates the same under both scopes', () => {
    fc.assert(
      fc.property(caseArb('window', 1), ({ tariff, intervals, to }) => {
        const perPeriod: TariffDocument = { ...tariff, energy: { ...tariff.energy!, tierScope: 'period' } };
        expect(rateWith(tariff, intervals, FROM, to)).toEqual(rateWith(perPeriod, intervals, FROM, to));
      }),
      { numRuns: 60 },
    );
  });

  it('splitting a window at any interval boundary conserves kWh per tier', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('window' as const, 'period' as const).chain((scope) => caseArb(scope)),
        fc.nat(),
        ({ tariff, intervals, to }, k) => {
          const boundary = intervals[k % intervals.length].intervalStart;
          const whole = tierMwh(tariff, intervals, to);
          const prefix = boundary > FROM ? tierMwh(tariff, intervals, boundary) : new Map<string, bigint>();
          const rest = intervals.filter((i) => i.intervalStart >= boundary).reduce((a, i) => a + BigInt(i.importMwh), 0n);
          // Every tier of the prefix is a part of the same tier of the whole window ...
          for (const [key, mwh] of prefix) expect(whole.get(key) ?? 0n).toBeGreaterThanOrEqual(mwh);
          // ... and what the rest of the window adds is exactly its import: no kWh lost, none counted twice.
          const added = [...whole].reduce((a, [key, mwh]) => a + mwh - (prefix.get(key) ?? 0n), 0n);
          expect(kwhText(added)).toBe(kwhText(rest));
          expect(kwhText(sum(whole))).toBe(kwhText(intervals.reduce((a, i) => a + BigInt(i.importMwh), 0n)));
        },
      ),
      { numRuns: 60 },
    );
  });

  it('the number path gives what the bigint path gives', () => {
    fc.assert(
      fc.property(fc.constantFrom('window' as const, 'period' as const).chain((scope) => caseArb(scope)), ({ tariff, intervals, to }) => {
        const numbers = rateWith(tariff, intervals, FROM, to);
        exactArithmetic.forceBigInt = true;
        try {
          expect(rateWith(tariff, intervals, FROM, to)).toEqual(numbers);
        } finally {
          exactArithmetic.forceBigInt = false;
        }
      }),
      { numRuns: 30 },
    );
  });

  it('a two-period tiered rate bills the cheap tier once per window, not once per period', () => {
    const tariff: TariffDocument = {
      id: 'two',
      name: 'Two periods, baseline 100 kWh',
      currency: { code: 'USD', minorUnit: 2 },
      timeZone: ZONE,
      seasons: [{ id: 'all', fromMonth: 1, toMonth: 12 }],
      energy: {
        periods: [
          { id: 'off', tiers: [{ max: '100', rate: '0.1' }, { rate: '0.2' }] },
          { id: 'peak', tiers: [{ max: '100', rate: '0.3' }, { rate: '0.4' }] },
        ],
        schedule: [{ seasons: ['all'], dayTypes: ['weekday', 'weekend'], periods: [{ from: '00:00', period: 'off' }, { from: '12:00', period: 'peak' }] }],
      },
    };
    // 1 kWh per quarter hour for one day: 48 kWh off-peak (00-12), 48 kWh peak (12-24), 3 days.
    const intervals = series(FROM, FROM + 3 * 86_400_000, 900, () => 1_000_000);
    const lines = (t: TariffDocument) => linesOf(rateWith(t, intervals, FROM, FROM + 3 * 86_400_000), 'energy').map((l) => [l.period, l.tier, l.quantity]);
    // Window: day 1 off 48 (C 48), peak 48 (C 96), day 2 off 4 kWh to 100 then tier 2.
    expect(lines(tariff)).toEqual([
      ['off', 1, '52'],
      ['off', 2, '92'],
      ['peak', 1, '48'],
      ['peak', 2, '96'],
    ]);
    // Period: each period's own 100 kWh.
    expect(lines({ ...tariff, energy: { ...tariff.energy!, tierScope: 'period' } })).toEqual([
      ['off', 1, '100'],
      ['off', 2, '44'],
      ['peak', 1, '100'],
      ['peak', 2, '44'],
    ]);
  });
});
