/**
 * Rating a meter's cycle at close, without a database: a flat tariff (0.10/kWh, 1.00/day, 10% tax) over a
 * 31-day UTC cycle of hourly intervals of 1 kWh each, so every amount is worked out by hand.
 */
import { describe, expect, it } from 'vitest';
import { RatingError, resolveTariffTimeline, type MeterInterval, type TariffDocument } from '../../rating/index.js';
import { flatTariff } from '../test-support.js';
import { cycleContaining } from './cycles.js';
import { rateMeterCycle, tariffVersionsIn, type VersionOf } from './rate-cycle.js';
import type { MeterTariffs } from '../tariffs/tariffs.repository.js';

const HOUR = 3_600_000;
const JANUARY = cycleContaining(Date.parse('2026-01-15T00:00:00Z'), 'UTC', 1);
const METER = { id: 'M-1', timezone: 'UTC', intervalSeconds: 3600 };
const KWH = 1_000_000; // mWh

const tariff = (effectiveFrom?: string, perDay = '1.00') =>
  ({ ...flatTariff('FLAT', { timeZone: 'UTC', rate: '0.10', perDay, tax: '0.10' }), ...(effectiveFrom ? { effectiveFrom } : {}) }) as TariffDocument;

function tariffsOf(...versions: TariffDocument[]): MeterTariffs {
  return { timeline: resolveTariffTimeline([{ tariffId: 'FLAT', effectiveFrom: Number.NEGATIVE_INFINITY }], versions), key: 'k', hasAssignment: true };
}

const versionOf: VersionOf = (document) => ({ tariffId: document.id, version: document.effectiveFrom ? 2 : 1, effectiveFrom: document.effectiveFrom ?? null });

/** Hourly actual readings of `mwh` each over [from, to), leaving out the hours listed. */
function hourly(from: number, to: number, mwh = KWH, missing: number[] = []): MeterInterval[] {
  const out: MeterInterval[] = [];
  for (let t = from; t < to; t += HOUR) if (!missing.includes(t)) out.push({ intervalStart: t, intervalSeconds: 3600, importMwh: mwh, exportMwh: 0, quality: 'actual' });
  return out;
}

describe('rateMeterCycle', () => {
  it('rates a complete cycle: 744 kWh x 0.10 + 31 days x 1.00 = 105.40, tax 10.54, total 115.94', () => {
    const rated = rateMeterCycle({ cycle: JANUARY, meter: METER, readings: hourly(JANUARY.from, JANUARY.to), tariffs: tariffsOf(tariff()), versionOf });
    expect(JANUARY.to - JANUARY.from).toBe(744 * HOUR);
    expect(rated.section).toMatchObject({
      meterId: 'M-1',
      intervalSeconds: 3600,
      tariffId: 'FLAT',
      tariffIds: ['FLAT'],
      tariffVersions: [{ tariffId: 'FLAT', version: 1, effectiveFrom: null }],
      subtotal: '105.40',
      taxes: '10.54',
      total: '115.94',
      asOf: '2026-02-01T00:00:00Z',
      coverage: { expectedIntervals: 744, actualIntervals: 744, estimatedIntervals: 0, missingIntervals: 0 },
      estimated: { linear: 0, profile: 0 },
      warnings: [],
    });
    expect(rated.estimates).toEqual([]);
    expect(rated.minorUnit).toBe(2);
    expect(rated.charges.total).toBe(rated.section.total);
  });

  it('estimates a short gap linearly and bills it: same amounts, two intervals estimated', () => {
    const gap = [JANUARY.from + 100 * HOUR, JANUARY.from + 101 * HOUR];
    const rated = rateMeterCycle({ cycle: JANUARY, meter: METER, readings: hourly(JANUARY.from, JANUARY.to, KWH, gap), tariffs: tariffsOf(tariff()), versionOf });
    expect(rated.estimates.map((e) => [e.intervalStart, e.importMwh, e.exportMwh, e.method])).toEqual(gap.map((t) => [t, KWH, 0, 'linear']));
    expect(rated.section.estimated).toEqual({ linear: 2, profile: 0 });
    expect(rated.section.coverage).toEqual({ expectedIntervals: 744, actualIntervals: 742, estimatedIntervals: 2, missingIntervals: 0 });
    expect(rated.section.total).toBe('115.94');
  });

  it('leaves a long gap without history missing, bills the rest and warns: 720 kWh -> 72.00 + 31.00, tax 10.30', () => {
    // 2 January: the same hours 1-4 weeks earlier lie before the cycle, and no history is given.
    const gap = Array.from({ length: 24 }, (_, k) => JANUARY.from + (24 + k) * HOUR);
    const rated = rateMeterCycle({ cycle: JANUARY, meter: METER, readings: hourly(JANUARY.from, JANUARY.to, KWH, gap), tariffs: tariffsOf(tariff()), versionOf });
    expect(rated.estimates).toEqual([]);
    expect(rated.section.coverage).toEqual({ expectedIntervals: 744, actualIntervals: 720, estimatedIntervals: 0, missingIntervals: 24 });
    expect(rated.section).toMatchObject({ subtotal: '103.00', taxes: '10.30', total: '113.30' });
    expect(rated.section.warnings.map((w) => w.code)).toContain('unestimated_gap');
  });

  it("fills a long gap from the same hours of the four weeks before (history), at their mean", () => {
    const gap = Array.from({ length: 24 }, (_, k) => JANUARY.from + (24 + k) * HOUR);
    // History of 2 kWh an hour: the profile estimates 2 kWh for each missing hour (24 x 2 kWh = 48 kWh).
    const history = hourly(JANUARY.from - 28 * 24 * HOUR, JANUARY.from, 2 * KWH);
    const rated = rateMeterCycle({ cycle: JANUARY, meter: METER, readings: hourly(JANUARY.from, JANUARY.to, KWH, gap), history, tariffs: tariffsOf(tariff()), versionOf });
    expect(rated.estimates).toHaveLength(24);
    expect(rated.estimates.every((e) => e.method === 'profile' && e.importMwh === 2 * KWH)).toBe(true);
    // (720 + 48) kWh x 0.10 = 76.80; + 31.00 = 107.80; tax 10.78.
    expect(rated.section).toMatchObject({ subtotal: '107.80', taxes: '10.78', total: '118.58', estimated: { linear: 0, profile: 24 } });
  });

  it('refuses a meter without a tariff assignment with the rating error no_tariff_in_effect', () => {
    const none: MeterTariffs = { timeline: [], key: 'none', hasAssignment: false };
    expect(() => rateMeterCycle({ cycle: JANUARY, meter: METER, readings: [], tariffs: none, versionOf })).toThrow(RatingError);
    try {
      rateMeterCycle({ cycle: JANUARY, meter: METER, readings: [], tariffs: none, versionOf });
    } catch (err) {
      expect((err as RatingError).code).toBe('no_tariff_in_effect');
    }
  });
});

describe('tariffVersionsIn', () => {
  it('lists the versions in effect during the cycle, in time order, and no other', () => {
    const tariffs = tariffsOf(tariff(), tariff('2026-01-16T00:00:00Z', '2.00'), tariff('2026-03-01T00:00:00Z', '3.00'));
    expect(tariffVersionsIn(tariffs, JANUARY, versionOf)).toEqual([
      { tariffId: 'FLAT', version: 1, effectiveFrom: null },
      { tariffId: 'FLAT', version: 2, effectiveFrom: '2026-01-16T00:00:00Z' },
    ]);
    const march = cycleContaining(Date.parse('2026-03-10T00:00:00Z'), 'UTC', 1);
    expect(tariffVersionsIn(tariffs, march, versionOf).map((v) => v.effectiveFrom)).toEqual(['2026-03-01T00:00:00Z']);
  });
});

describe('rateMeterCycle under net metering at a service start and end', () => {
  const netMetered = { ...flatTariff('NEM', { timeZone: 'UTC', rate: '0.10', sell: '0.05' }), netMetering: { trueUpSellRate: '0.04' } } as TariffDocument;
  const tariffs: MeterTariffs = { timeline: resolveTariffTimeline([{ tariffId: 'NEM', effectiveFrom: Number.NEGATIVE_INFINITY }], [netMetered]), key: 'k', hasAssignment: true };
  const mid = JANUARY.from + 15 * 24 * HOUR;
  const exporting = (from: number, to: number) => hourly(from, to).map((r) => ({ ...r, importMwh: 0, exportMwh: KWH }));
  const carried = { carriedIn: { banks: [{ period: 'any', kWh: '50', slot: 0 }], runningNetKwh: '50', creditBalance: '0', yearBills: '0' } };

  it('starts a service start with nothing carried in, whatever was derived for the cycle', () => {
    const rated = rateMeterCycle({ cycle: JANUARY, meter: METER, readings: exporting(mid, JANUARY.to), tariffs, versionOf, service: { start: mid, end: null }, carried });
    expect(rated.section.metering).toMatchObject({ carriedIn: { banks: [], runningNetKwh: '0' }, carriedOut: { runningNetKwh: '384' }, trueUp: false }); // 16 days x 24 kWh, the 50 derived not counted
  });

  it('settles what is carried in the cycle of a service end: the running net paid at the true-up sell rate', () => {
    const rated = rateMeterCycle({ cycle: JANUARY, meter: METER, readings: exporting(JANUARY.from, mid), tariffs, versionOf, service: { start: null, end: mid }, carried });
    // 50 carried in + 360 exported over 15 days
    expect(rated.section.metering).toMatchObject({ trueUp: true, settledBy: 'service_end', trueUpKwh: '410', carriedOut: { banks: [], runningNetKwh: '0' } });
    expect(rated.section.lines.find((l) => l.type === 'export_credit')).toMatchObject({ period: 'trueup', quantity: '410', amount: '-16.40' });
    const whole = rateMeterCycle({ cycle: JANUARY, meter: METER, readings: exporting(JANUARY.from, mid), tariffs, versionOf, carried });
    expect(whole.section.metering).toMatchObject({ trueUp: false, carriedOut: { banks: [{ period: 'any' }] } });
  });
});
