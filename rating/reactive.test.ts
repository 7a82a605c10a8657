/**
 * The reactive power charge (rating/reactive.ts): $/kVAR x the window's highest reactive demand, from
 * reactive import energy; absent reactive energy is "not measured", never 0; hand-computed cases.
 */
import { describe, expect, it } from 'vitest';
import { importUrdb, type MeterInterval, RatingError, rateWindow, type TariffDocument } from './index.js';
import { flatTariff, linesOf, local, rateWith, series } from './test-support.js';

const LA = 'America/Los_Angeles';
const from = local(LA, '2026-07-01T00:00');
const to = local(LA, '2026-07-01T01:00');

/** 0.1 $/kWh energy and 0.5 $/kVAR reactive power. */
const tariff: TariffDocument = flatTariff({ demand: { reactive: { rate: '0.5' } } });

/** Four 15-minute intervals of 1 kWh each, with the given reactive import in mvarh (undefined: not measured). */
function hour(reactive: (number | undefined | null)[]): MeterInterval[] {
  return series(from, to, 900, () => 1_000_000).map((interval, i) =>
    reactive[i] === undefined ? interval : { ...interval, reactiveImportMvarh: reactive[i] },
  );
}

const reactiveLines = (charges: ReturnType<typeof rateWith>) => linesOf(charges, 'demand').filter((l) => l.period === 'reactive');

describe('reactive power charge', () => {
  it('bills $/kVAR x the highest interval reactive demand (kvarh / hours of the interval)', () => {
    // 2.5, 3, 0.75 and 1 kvarh in 15 minutes: 10, 12, 3 and 4 kVAR; 12 kVAR x 0.5 = 6.00.
    const charges = rateWith(tariff, hour([2_500_000, 3_000_000, 750_000, 1_000_000]), from, to);
    expect(reactiveLines(charges)).toEqual([
      { type: 'demand', period: 'reactive', tier: 1, quantity: '12', unit: 'kVAR', rate: '0.5', amount: '6.00', tariffId: 'flat' },
    ]);
    // 4 kWh x 0.1 = 0.40 energy; total 6.40.
    expect(charges.subtotal).toBe('6.40');
    expect(charges.notes).toBeUndefined();
  });

  it('keeps milli-var-hour precision exactly (1.001 kvarh in 15 minutes = 4.004 kVAR)', () => {
    const charges = rateWith(tariff, hour([1_001_000, 1, 0, 999]), from, to);
    expect(reactiveLines(charges)[0]).toMatchObject({ quantity: '4.004', amount: '2.00' });
  });

  it('measured 0 is a 0 kVAR line; not measured is no line and a note saying so', () => {
    const zero = rateWith(tariff, hour([0, 0, 0, 0]), from, to);
    expect(reactiveLines(zero)).toMatchObject([{ quantity: '0', amount: '0.00' }]);
    expect(zero.notes).toBeUndefined();

    const none = rateWith(tariff, hour([undefined, null, undefined, undefined]), from, to);
    expect(reactiveLines(none)).toEqual([]);
    expect(none.subtotal).toBe('0.40');
    expect(none.notes).toEqual(['reactive_data_missing: 4 of 4 intervals without reactive energy; flat: reactive power charge not billed']);
  });

  it('measures on the intervals that carry reactive energy and says how many did not', () => {
    const charges = rateWith(tariff, hour([undefined, 2_000_000, undefined, 500_000]), from, to);
    expect(reactiveLines(charges)).toMatchObject([{ quantity: '8', amount: '4.00' }]);
    expect(charges.notes).toEqual(['reactive_data_missing: 2 of 4 intervals without reactive energy; flat: reactive power charge measured on the other 2']);
  });

  it('averages over the demand window when meter intervals are shorter (15-minute data, 60-minute window)', () => {
    const hourly: TariffDocument = flatTariff({ demand: { windowMinutes: 60, reactive: { rate: '0.5' } } });
    // One local hour: 2.5 + 3 + 0.75 + 1 = 7.25 kvarh / 1 h = 7.25 kVAR; x 0.5 = 3.625 -> 3.63.
    const charges = rateWith(hourly, hour([2_500_000, 3_000_000, 750_000, 1_000_000]), from, to);
    expect(reactiveLines(charges)).toMatchObject([{ quantity: '7.25', amount: '3.63' }]);
  });

  it('reads hourly intervals as kvarh per hour, and ignores reactive export', () => {
    const hourly = [{ intervalStart: from, intervalSeconds: 3600, importMwh: 1_000_000, exportMwh: 0, reactiveImportMvarh: '5250000', reactiveExportMvarh: 9_000_000, quality: 'actual' as const }];
    const charges = rateWith(tariff, hourly, from, to);
    expect(reactiveLines(charges)).toMatchObject([{ quantity: '5.25', amount: '2.63' }]);
  });

  it('prorates the kVAR by the share of the cycle the tariff is in effect, like demand', () => {
    const cycle = { from: local(LA, '2026-07-01T00:00'), to: local(LA, '2026-07-31T00:00') };
    const change = local(LA, '2026-07-16T00:00');
    const other = flatTariff({ id: 'other' });
    const intervals = series(cycle.from, cycle.to, 3600, () => 1_000_000).map((interval) => ({
      ...interval,
      reactiveImportMvarh: interval.intervalStart === local(LA, '2026-07-03T12:00') ? 10_000_000 : 1_000_000,
    }));
    const charges = rateWindow({
      tariffTimeline: [
        { from: Number.NEGATIVE_INFINITY, to: change, tariff },
        { from: change, tariff: other },
      ],
      intervals,
      billingWindow: cycle,
      billingCycle: cycle,
      meterIntervalSeconds: 3600,
    });
    // 15 of 30 days: 10 kVAR x 0.5 = 5 kVAR billed, x 0.5 $/kVAR = 2.50.
    expect(reactiveLines(charges)).toEqual([
      { type: 'demand', period: 'reactive', tier: 1, quantity: '5', unit: 'kVAR', rate: '0.5', amount: '2.50', tariffId: 'flat', measuredKvar: '10', prorationFactor: '0.5' },
    ]);
  });

  it('refuses reactive energy that is not an integer of milli-var-hours >= 0', () => {
    for (const bad of [-1, 1.5, 'x']) {
      const run = () => rateWith(tariff, hour([bad as number, 0, 0, 0]), from, to);
      expect(run).toThrow(RatingError);
      try {
        run();
      } catch (err) {
        expect((err as RatingError).code).toBe('invalid_interval');
        expect((err as RatingError).details[0]).toContain('reactiveImportMvarh');
      }
    }
  });

  it('rates a URDB rate with demandreactivepowercharge: only the reactive charge is added', () => {
    const allHours = Array.from({ length: 12 }, () => Array(24).fill(0));
    const { tariff: imported, warnings } = importUrdb(
      {
        label: 'reactive-rate',
        energyratestructure: [[{ rate: 0.1, unit: 'kWh' }]],
        energyweekdayschedule: allHours,
        energyweekendschedule: allHours,
        flatdemandstructure: [[{ rate: 10 }]],
        flatdemandmonths: Array(12).fill(0),
        demandreactivepowercharge: 0.45,
      },
      { timeZone: LA },
    );
    expect(warnings).toEqual([]);
    expect(imported.demand?.reactive).toEqual({ rate: '0.45' });
    // 1 kWh per 15 minutes = 4 kW flat demand x 10 = 40.00; 12 kVAR x 0.45 = 5.40; 4 kWh x 0.1 = 0.40.
    const charges = rateWith(imported, hour([2_500_000, 3_000_000, 750_000, 1_000_000]), from, to);
    expect(linesOf(charges, 'demand').map((l) => [l.period, l.quantity, l.unit, l.amount])).toEqual([
      ['flat', '4', 'kW', '40.00'],
      ['reactive', '12', 'kVAR', '5.40'],
    ]);
    expect(charges.subtotal).toBe('45.80');
  });
});
