/**
 * Properties of metered billing windows over random readings (fast-check):
 *
 * - a window rated on its own, from where its history starts (`meteringHistoryStart`) with an empty
 *   state, or resumed from the state a closed bill carried out, equals the same window rated in one pass
 *   from the tariff's start, in every mode;
 * - the order in which readings arrive changes nothing, and a late reading changes only its own window
 *   and later ones;
 * - splitting a settlement year into billing windows differently gives the same year total where the
 *   mode's semantics allow it (one period, one tier, no per-window charges or minimums, and a surplus
 *   valued at the buy rate: net billing with or without a balance paid out, buy all sell all, net metering
 *   with a true-up at the buy rate or money credits at sell = buy). The true-up payment itself depends on
 *   the split in the carrying modes: a deficit in one window is billed, a later surplus is carried to the
 *   true-up; the energy identity billed kWh - true-up kWh = net import holds for every split.
 */
import fc from 'fast-check';
import Decimal from 'decimal.js';
import { describe, expect, it } from 'vitest';
import type { MeterInterval } from '../intervals.js';
import type { TariffDocument } from '../tariff.schema.js';
import { local } from '../test-support.js';
import { type MeteredCharges, meteringHistoryStart, rateMeteredWindows } from './billing-windows.js';
import { type Metering, resolveMetering } from './options.js';
import { KWH, months, touTariff, ZONE } from './test-tariffs.js';

const DAY = 86_400_000;
const START_2018 = local(ZONE, '2018-01-01T00:00'); // Phoenix has no DST: days are 24 h

/** Sparse readings over `days` days: whole kWh at random quarter hours (import and export both possible). */
function readingsArb(days: number, seconds: number) {
  const perHour = 3600 / seconds;
  return fc
    .uniqueArray(
      fc.record({ slot: fc.integer({ min: 0, max: days * 24 * perHour - 1 }), imp: fc.integer({ min: 0, max: 6 }), exp: fc.integer({ min: 0, max: 9 }) }),
      { minLength: 1, maxLength: 300, selector: (r) => r.slot },
    )
    .map((rows) =>
      rows.map(
        (r): MeterInterval => ({
          intervalStart: START_2018 + r.slot * seconds * 1000,
          intervalSeconds: seconds,
          importMwh: r.imp * KWH,
          exportMwh: r.exp * KWH,
          quality: 'actual',
        }),
      ),
    );
}

const trueUpMonth = fc.integer({ min: 1, max: 12 });
const meteringArb: fc.Arbitrary<Metering> = fc.oneof(
  fc.constant(resolveMetering({})),
  fc.constant(resolveMetering({ dgRules: 'Buy All Sell All' })),
  fc.record({ m: trueUpMonth, rate: fc.constantFrom('0', '0.03'), rollover: fc.boolean(), min: fc.constantFrom(undefined, '80') }).map(({ m, rate, rollover, min }) =>
    resolveMetering({ netMetering: { carryOver: 'kWh', trueUpMonth: m, trueUpSellRate: rate, trueUpCreditRollover: rollover }, annualMinimum: min }),
  ),
  fc.record({ m: trueUpMonth, min: fc.constantFrom(undefined, '80') }).map(({ m, min }) => resolveMetering({ netMetering: { carryOver: 'dollars', trueUpMonth: m }, annualMinimum: min })),
  fc
    .record({ m: trueUpMonth, expire: fc.boolean(), apply: fc.boolean(), hourly: fc.boolean(), min: fc.constantFrom(undefined, '80') })
    .map(({ m, expire, apply, hourly, min }) =>
      resolveMetering({
        dgRules: hourly ? 'Net Billing Hourly' : undefined,
        netBilling: { trueUpMonth: m, creditExpiresAtTrueUp: expire, applyCreditInMonthEarned: apply },
        annualMinimum: min,
      }),
    ),
);

const tariff: TariffDocument = { ...touTariff, minimumCharge: { amount: '5.50', per: 'month' } };
const twoYears = months(ZONE, 2018, 1, 24);

function rate(doc: TariffDocument, metering: Metering, intervals: MeterInterval[], windows: typeof twoYears, seconds: number, carriedIn?: MeteredCharges['metering']['carriedIn']): MeteredCharges[] {
  return rateMeteredWindows({ tariffTimeline: [{ from: Number.MIN_SAFE_INTEGER, tariff: doc }], intervals, meterIntervalSeconds: seconds, windows, metering, carriedIn });
}

describe('metered windows: history and resumption', () => {
  it('rates a window on its own from where its history starts, or from a closed bill\'s carried-out state, as in one pass', () => {
    fc.assert(
      fc.property(readingsArb(730, 900), meteringArb, fc.integer({ min: 0, max: 23 }), fc.integer({ min: 1, max: 23 }), (intervals, metering, k, j) => {
        const all = rate(tariff, metering, intervals, twoYears, 900);
        const start = meteringHistoryStart(tariff, twoYears[k].billingCycle, metering);
        if (start !== null) {
          const first = Math.max(0, twoYears.findIndex((w) => w.window.from === start));
          const alone = rate(tariff, metering, intervals, twoYears.slice(start < START_2018 ? 0 : first, k + 1), 900);
          expect(alone[alone.length - 1]).toEqual(all[k]);
        }
        const resumeAt = Math.min(j, k);
        if (resumeAt > 0) {
          const resumed = rate(tariff, metering, intervals, twoYears.slice(resumeAt, k + 1), 900, all[resumeAt - 1].metering.carriedOut);
          expect(resumed[resumed.length - 1]).toEqual(all[k]);
        }
      }),
      { numRuns: 40 },
    );
  });
});

describe('metered windows: readings in any order, late readings', () => {
  it('gives the same windows whatever the order of the readings; a late reading changes only its window and later ones', () => {
    fc.assert(
      fc.property(readingsArb(365, 900), meteringArb, fc.integer({ min: 0, max: 10_000 }), (intervals, metering, pick) => {
        const windows = twoYears.slice(0, 12);
        const all = rate(tariff, metering, intervals, windows, 900);
        const shuffled = [...intervals].sort((a, b) => ((a.intervalStart * 7919) % 1009) - ((b.intervalStart * 7919) % 1009));
        expect(rate(tariff, metering, shuffled, windows, 900)).toEqual(all);
        const late = intervals[pick % intervals.length];
        const before = rate(tariff, metering, intervals.filter((i) => i !== late), windows, 900);
        const w = windows.findIndex((x) => late.intervalStart >= x.window.from && late.intervalStart < x.window.to);
        expect(before.slice(0, w)).toEqual(all.slice(0, w));
      }),
      { numRuns: 40 },
    );
  });
});

describe('metered windows: splitting a year differently', () => {
  const flat: TariffDocument = {
    id: 'flat-nem',
    name: 'one period, one tier, sell = buy',
    currency: { code: 'USD', minorUnit: 2 },
    timeZone: ZONE,
    seasons: [{ id: 'all', fromMonth: 1, toMonth: 12 }],
    energy: { periods: [{ id: 'any', tiers: [{ rate: '0.10' }], sell: '0.10' }], schedule: [{ seasons: ['all'], dayTypes: ['weekday', 'weekend'], periods: [{ from: '00:00', period: 'any' }] }] },
  };
  const invariantModes: fc.Arbitrary<Metering> = fc.constantFrom(
    resolveMetering({}),
    resolveMetering({ dgRules: 'Net Billing Hourly' }),
    resolveMetering({ dgRules: 'Buy All Sell All' }),
    resolveMetering({ netBilling: { trueUpMonth: 12 } }),
    resolveMetering({ netBilling: { trueUpMonth: 12, applyCreditInMonthEarned: true } }),
    resolveMetering({ dgRules: 'Net Billing Hourly', netBilling: { trueUpMonth: 12 } }),
    resolveMetering({ netMetering: { carryOver: 'kWh', trueUpMonth: 12, trueUpSellRate: '0.10' } }),
    resolveMetering({ netMetering: { carryOver: 'dollars', trueUpMonth: 12 } }),
  );
  /** Consecutive windows over 2018 cut at local midnights up to December 1 (so only the last one ends in December). */
  const partition = fc.uniqueArray(fc.integer({ min: 1, max: 334 }), { maxLength: 20 }).map((cuts) => {
    const edges = [0, ...cuts.sort((a, b) => a - b), 365].map((d) => START_2018 + d * DAY);
    return edges.slice(1).map((to, i) => ({ window: { from: edges[i], to }, billingCycle: { from: edges[i], to } }));
  });

  it('gives the same year total for any split into billing windows, equal to the net import at the buy rate', () => {
    fc.assert(
      fc.property(readingsArb(365, 900), invariantModes, partition, partition, (intervals, metering, a, b) => {
        const total = (split: typeof a) => rate(flat, metering, intervals, split, 900).reduce((s, c) => s.plus(c.total), new Decimal(0));
        const net = intervals.reduce((s, i) => s + Number(i.importMwh) - Number(i.exportMwh), 0) / KWH;
        expect(total(a).toFixed(2)).toBe(total(b).toFixed(2));
        expect(total(a).toFixed(2)).toBe(new Decimal(net).mul('0.10').toFixed(2));
      }),
      { numRuns: 40 },
    );
  });

  it('keeps billed kWh - true-up kWh = net import for any split under net metering with a kWh bank', () => {
    const metering = resolveMetering({ netMetering: { carryOver: 'kWh', trueUpMonth: 12, trueUpSellRate: '0' } });
    fc.assert(
      fc.property(readingsArb(365, 900), partition, (intervals, split) => {
        const charges = rate(flat, metering, intervals, split, 900);
        const billed = charges.flatMap((c) => c.lines).filter((l) => l.type === 'energy').reduce((s, l) => s.plus((l as { quantity: string }).quantity), new Decimal(0));
        const trueUp = new Decimal(charges[charges.length - 1].metering.trueUpKwh ?? 0);
        const net = intervals.reduce((s, i) => s + Number(i.importMwh) - Number(i.exportMwh), 0) / KWH;
        expect(billed.minus(trueUp).toFixed()).toBe(new Decimal(net).toFixed());
      }),
      { numRuns: 40 },
    );
  });
});
