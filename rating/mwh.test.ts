/**
 * The number fast path of the rating loops (mwh.ts) against the bigint reference path, on the same inputs:
 * random meter-months with the example tariffs (tiers, time-of-use and flat demand with and without a
 * demand window, export credits, dynamic prices), with ordinary energies, energies whose sums or demand
 * values pass 2^53 (the number path must notice and give way), and energies beyond 2^53 given as bigints
 * and digit strings. Every output must be identical.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { exactArithmetic } from './mwh.js';
import { exampleDynamicTariff, exampleTariff, rateWindow, type MeterInterval, type TariffDocument } from './index.js';
import { local } from './test-support.js';

const ZONE = 'America/Los_Angeles';
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

function rateBothWays(tariff: TariffDocument, intervals: MeterInterval[], from: number, to: number, seconds: number) {
  const input = { tariffTimeline: [{ from: Number.NEGATIVE_INFINITY, tariff }], intervals, billingWindow: { from, to }, meterIntervalSeconds: seconds };
  const attempt = () => {
    try {
      return { charges: rateWindow(input) };
    } catch (err) {
      return { error: `${(err as Error).name}: ${(err as Error).message}` };
    }
  };
  exactArithmetic.forceBigInt = false;
  const fast = attempt();
  exactArithmetic.forceBigInt = true;
  const reference = attempt();
  exactArithmetic.forceBigInt = false;
  return { fast, reference };
}

const energyArb = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 4_000_000 }) },
  { weight: 2, arbitrary: fc.constant(0) },
  // sums of a month of these pass 2^53; demand (x 4 per hour) passes it for the largest
  { weight: 1, arbitrary: fc.integer({ min: Math.floor(MAX_SAFE / 8), max: MAX_SAFE }) },
);

const scenarioArb = fc.record({
  dynamic: fc.boolean(),
  seconds: fc.constantFrom(300, 900, 3600),
  days: fc.integer({ min: 1, max: 31 }),
  startDay: fc.integer({ min: 0, max: 300 }),
  huge: fc.double({ min: 0, max: 1, noNaN: true }),
  form: fc.constantFrom('number', 'bigint', 'string'),
  seed: fc.integer({ min: 1, max: 2 ** 30 }),
});

describe('exact energy arithmetic: number path = bigint path', () => {
  afterEach(() => {
    exactArithmetic.forceBigInt = false;
  });

  it('gives identical charges (or the identical error) on random meter windows', () => {
    fc.assert(
      fc.property(scenarioArb, fc.infiniteStream(energyArb), ({ dynamic, seconds, days, startDay, huge, form, seed }, energies) => {
        const tariff = dynamic ? exampleDynamicTariff : exampleTariff;
        const from = dynamic ? Date.parse(exampleDynamicTariff.dynamicPrices![0].start) : local(ZONE, '2026-01-01T00:00') + startDay * 86_400_000;
        const to = dynamic ? Date.parse(exampleDynamicTariff.dynamicPrices![exampleDynamicTariff.dynamicPrices!.length - 1].end) : from + days * 86_400_000;
        let state = seed;
        const random = () => (state = (state * 48271) % 2147483647) / 2147483647;
        const values = energies[Symbol.iterator]();
        const intervals: MeterInterval[] = [];
        for (let t = from; t < to; t += seconds * 1000) {
          if (random() < 0.05) continue;
          const energy = (): number | bigint | string => {
            // now and then a value beyond 2^53, only expressible as a bigint or a digit string
            if (random() < huge * 0.01) {
              const big = BigInt(MAX_SAFE) + BigInt(Math.floor(random() * 1e9));
              return form === 'string' ? big.toString() : big;
            }
            const v = values.next().value as number;
            return form === 'bigint' ? BigInt(v) : form === 'string' ? String(v) : v;
          };
          intervals.push({ intervalStart: t, intervalSeconds: seconds, importMwh: energy(), exportMwh: random() < 0.3 ? energy() : 0, quality: random() < 0.05 ? 'estimated' : 'actual' });
        }
        const { fast, reference } = rateBothWays(tariff, intervals, from, to, seconds);
        expect(fast).toEqual(reference);
      }),
      { numRuns: 150 },
    );
  });

  it('gives way to bigints exactly at 2^53: sums and demand values just below and just above it', () => {
    const from = local(ZONE, '2026-07-01T00:00');
    const to = from + 86_400_000;
    // four intervals whose sum is MAX_SAFE - 1 ... MAX_SAFE + 3 (2^53 + 1 and 2^53 + 3 are not doubles)
    for (const last of [0, 1, 2, 3, 4]) {
      const quarter = Math.floor(MAX_SAFE / 4);
      const imports = [quarter, quarter, quarter, MAX_SAFE - 3 * quarter - 1 + last];
      const intervals: MeterInterval[] = imports.map((importMwh, i) => ({ intervalStart: from + i * 900_000, intervalSeconds: 900, importMwh, exportMwh: importMwh, quality: 'actual' }));
      const { fast, reference } = rateBothWays(exampleTariff, intervals, from, to, 900);
      expect(fast).toEqual(reference);
      expect(fast.charges?.lines.length).toBeGreaterThan(0);
    }
    // one 15-minute interval whose demand (x 4 per hour) is just below / above 2^53
    for (const importMwh of [Math.floor(MAX_SAFE / 4), Math.floor(MAX_SAFE / 4) + 1, MAX_SAFE]) {
      const { fast, reference } = rateBothWays(exampleTariff, [{ intervalStart: from, intervalSeconds: 900, importMwh, exportMwh: 0, quality: 'actual' }], from, to, 900);
      expect(fast).toEqual(reference);
    }
  });

  it('accepts and refuses the same energies as before: bigint and digit-string forms, negatives, fractions', () => {
    const from = local(ZONE, '2026-07-01T00:00');
    const to = from + 86_400_000;
    const one = (importMwh: number | bigint | string) => rateBothWays(exampleTariff, [{ intervalStart: from, intervalSeconds: 900, importMwh, exportMwh: 0, quality: 'actual' }], from, to, 900);
    for (const value of [0, -0, 1, 1.5, -1, MAX_SAFE, MAX_SAFE + 1, 2 ** 60, 0n, 5n, -5n, 2n ** 70n, '0', '000123', '123456789012345', '1234567890123456', '9007199254740993', '99999999999999999999', '-1', '1.0', ' 1', '']) {
      const { fast, reference } = one(value);
      expect(fast, String(value)).toEqual(reference);
    }
    const asNumber = one(123_456).fast;
    expect(one(123_456n).fast).toEqual(asNumber);
    expect(one('123456').fast).toEqual(asNumber);
  });
});
