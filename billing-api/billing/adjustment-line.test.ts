/**
 * The adjustment of a late period, without a database: the period re-rated from the readings stored now,
 * against what was billed for it so far. Flat tariff: 0.10/kWh, 1.00/day, 10% tax; amounts worked by hand.
 */
import { describe, expect, it } from 'vitest';
import { RatingError, resolveTariffTimeline, type MeterInterval, type TariffDocument } from '../../rating/index.js';
import { flatTariff } from '../test-support.js';
import { adjustmentLine, type LatePeriod } from './adjustment-line.js';
import { cycleContaining } from './cycles.js';
import { rateMeterCycle } from './rate-cycle.js';
import type { MeterTariffs } from '../tariffs/tariffs.repository.js';

const HOUR = 3_600_000;
const JANUARY = cycleContaining(Date.parse('2026-01-15T00:00:00Z'), 'UTC', 1);
const PERIOD: LatePeriod = { meterId: 'M-1', meterIntervalSeconds: 3600, billId: 'ACC-1.2026-01-01', cycleFrom: JANUARY.from, cycleTo: JANUARY.to };
const TARIFFS: MeterTariffs = {
  timeline: resolveTariffTimeline([{ tariffId: 'FLAT', effectiveFrom: Number.NEGATIVE_INFINITY }], [flatTariff('FLAT', { timeZone: 'UTC', rate: '0.10', perDay: '1.00', tax: '0.10' }) as TariffDocument]),
  key: 'k',
  hasAssignment: true,
};
const versionOf = (document: TariffDocument) => ({ tariffId: document.id, version: 1, effectiveFrom: null });

/** Every hour of January at 1 kWh: 744 kWh x 0.10 + 31 x 1.00 = 105.40, tax 10.54, total 115.94. */
const fullJanuary: MeterInterval[] = Array.from({ length: 744 }, (_, k) => ({
  intervalStart: JANUARY.from + k * HOUR, intervalSeconds: 3600, importMwh: 1_000_000, exportMwh: 0, quality: 'actual' as const,
}));

describe('adjustmentLine', () => {
  it('is the re-rated total minus what was billed so far, tax-inclusive, naming the bill and period', () => {
    // Billed at close with the last 24 hours missing: 720 kWh -> 72.00 + 31.00 = 103.00 + 10.30 = 113.30.
    const line = adjustmentLine(PERIOD, fullJanuary, { previouslyBilled: '113.3', currency: 'USD' }, TARIFFS, versionOf);
    expect(line).toEqual({
      type: 'adjustment',
      meterId: 'M-1',
      reason: 'late_data',
      correctsBillId: 'ACC-1.2026-01-01',
      period: { from: '2026-01-01T00:00:00Z', to: '2026-02-01T00:00:00Z' },
      previouslyBilled: '113.30',
      rerated: {
        subtotal: '105.40',
        taxes: '10.54',
        total: '115.94',
        coverage: { expectedIntervals: 744, actualIntervals: 744, estimatedIntervals: 0, missingIntervals: 0 },
        tariffVersions: [{ tariffId: 'FLAT', version: 1, effectiveFrom: null }],
      },
      amount: '2.64',
    });
  });

  it('measures a meter that was not on the corrected bill against 0', () => {
    expect(adjustmentLine(PERIOD, fullJanuary, { previouslyBilled: '0', currency: 'USD' }, TARIFFS, versionOf)?.amount).toBe('115.94');
  });

  it('writes nothing when re-rating changes nothing, or when the period is now rated in another currency', () => {
    expect(adjustmentLine(PERIOD, fullJanuary, { previouslyBilled: '115.94', currency: 'USD' }, TARIFFS, versionOf)).toBeNull();
    expect(adjustmentLine(PERIOD, fullJanuary, { previouslyBilled: '100.00', currency: 'EUR' }, TARIFFS, versionOf)).toBeNull();
  });

  it('throws the rating error when the period cannot be rated (the service then logs and writes nothing)', () => {
    const none: MeterTariffs = { timeline: [], key: 'none', hasAssignment: false };
    expect(() => adjustmentLine(PERIOD, fullJanuary, { previouslyBilled: '0', currency: 'USD' }, none, versionOf)).toThrow(RatingError);
  });
});

describe('adjustmentLine under net metering at a service start and end', () => {
  const netMetered = { ...flatTariff('NEM', { timeZone: 'UTC', rate: '0.10', sell: '0.05' }), netMetering: { trueUpSellRate: '0.04' } } as TariffDocument;
  const tariffs: MeterTariffs = { timeline: resolveTariffTimeline([{ tariffId: 'NEM', effectiveFrom: Number.NEGATIVE_INFINITY }], [netMetered]), key: 'k', hasAssignment: true };
  const mid = JANUARY.from + 15 * HOUR * 24;
  const exporting = fullJanuary.map((r) => ({ ...r, importMwh: 0, exportMwh: 1_000_000 }));
  const carriedIn = { banks: [{ period: 'any', kWh: '50', slot: 0 }], runningNetKwh: '50', creditBalance: '0', yearBills: '0' };
  const meter = { id: 'M-1', timezone: 'UTC', intervalSeconds: 3600 };

  // The close of the cycle (rate-cycle.ts) and a re-rating of the same readings and carried-in state agree.
  it.each([
    ['a service start: nothing carried in', { start: mid, end: null }],
    ['a service end: the final window settles what is carried', { start: null, end: mid }],
  ])('re-rates the cycle of %s as it was closed, so unchanged data adjusts nothing', (_, service) => {
    const closed = rateMeterCycle({ cycle: JANUARY, meter, readings: exporting, tariffs, versionOf, service, carried: { carriedIn } });
    const billed = { previouslyBilled: closed.charges.total, currency: closed.charges.currency, carriedOut: closed.charges.metering!.carriedOut };
    expect(adjustmentLine({ ...PERIOD, service, carriedIn }, exporting, billed, tariffs, versionOf)).toBeNull();
    // A late hour inside the service span is re-rated the same way: only that hour's export differs.
    const late = exporting.map((r) => (r.intervalStart === (service.start ?? JANUARY.from) ? { ...r, exportMwh: 2_000_000 } : r));
    const line = adjustmentLine({ ...PERIOD, service, carriedIn }, late, billed, tariffs, versionOf);
    const reclosed = rateMeterCycle({ cycle: JANUARY, meter, readings: late, tariffs, versionOf, service, carried: { carriedIn } });
    expect(line).toMatchObject({ rerated: { total: reclosed.charges.total }, carriedOut: { rerated: reclosed.charges.metering!.carriedOut } });
  });
});
