/**
 * The adjustment of a late period, without a database: the period re-rated from the readings stored now,
 * against what was billed for it so far. Flat tariff: 0.10/kWh, 1.00/day, 10% tax; amounts worked by hand.
 */
import { describe, expect, it } from 'vitest';
import { RatingError, resolveTariffTimeline, type MeterInterval, type TariffDocument } from '../../rating/index.js';
import { flatTariff } from '../test-support.js';
import { adjustmentLine, type LatePeriod } from './adjustment-line.js';
import { cycleContaining } from './cycles.js';
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
