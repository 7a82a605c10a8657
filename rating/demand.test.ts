import { describe, expect, it } from 'vitest';
import type { TariffDocument } from './index.js';
import { at, flatTariff, linesOf, local, rateWith, series } from './test-support.js';

const LA = 'America/Los_Angeles';

/** Demand-only tariff (no energy charges). */
function demandTariff(demand: TariffDocument['demand'], extra: Partial<TariffDocument> = {}): TariffDocument {
  return flatTariff({ id: 'demand', energy: undefined, demand, ...extra });
}

describe('demand charges', () => {
  it('bills the maximum interval demand per TOU period and flat, split across tiers', () => {
    const tariff = demandTariff({
      windowMinutes: 15,
      periods: [
        { id: 'peak', tiers: [{ max: '10', rate: '10' }, { rate: '15' }] },
        { id: 'base', tiers: [{ rate: '2' }] },
      ],
      schedule: [
        {
          seasons: ['all'],
          dayTypes: ['weekday'],
          periods: [
            { from: '00:00', period: 'base' },
            { from: '16:00', period: 'peak' },
            { from: '21:00', period: 'base' },
          ],
        },
        { seasons: ['all'], dayTypes: ['weekend'], periods: [{ from: '00:00', period: 'base' }] },
      ],
      flat: [{ id: 'flat', seasons: ['all'], tiers: [{ max: '5', rate: '1' }, { max: '20', rate: '2' }, { rate: '3' }] }],
    });
    const from = local(LA, '2026-06-10T00:00'); // a Wednesday
    const to = local(LA, '2026-06-11T00:00');
    const readings = series(from, to, 900, (start) =>
      start === local(LA, '2026-06-10T17:00') ? 3_500_000 : start === local(LA, '2026-06-10T03:00') ? 4_000_000 : 1_000_000,
    );
    const charges = rateWith(tariff, readings, from, to);
    // peak: 3.5 kWh in 15 min = 14 kW -> 10 kW x 10 + 4 kW x 15; base: 4 kWh = 16 kW x 2; flat: 16 kW -> 5 x 1 + 11 x 2.
    expect(linesOf(charges, 'demand')).toEqual([
      { type: 'demand', period: 'peak', tier: 1, quantity: '10', unit: 'kW', rate: '10', amount: '100.00', tariffId: 'demand' },
      { type: 'demand', period: 'peak', tier: 2, quantity: '4', unit: 'kW', rate: '15', amount: '60.00', tariffId: 'demand' },
      { type: 'demand', period: 'base', tier: 1, quantity: '16', unit: 'kW', rate: '2', amount: '32.00', tariffId: 'demand' },
      { type: 'demand', period: 'flat', flatDemandPeriod: 'flat', tier: 1, quantity: '5', unit: 'kW', rate: '1', amount: '5.00', tariffId: 'demand' },
      { type: 'demand', period: 'flat', flatDemandPeriod: 'flat', tier: 2, quantity: '11', unit: 'kW', rate: '2', amount: '22.00', tariffId: 'demand' },
    ]);
    expect(charges.subtotal).toBe('219.00');
  });

  it('averages 5-minute data over fixed 15-minute windows (block demand, not rolling, not the 5-minute peak)', () => {
    const tariff = demandTariff({ windowMinutes: 15, flat: [{ id: 'flat', seasons: ['all'], tiers: [{ rate: '1' }] }] });
    const from = local(LA, '2026-06-10T10:00');
    const to = local(LA, '2026-06-10T11:00');
    const wh = [1000, 2000, 3000, 3000, 0, 0, 0, 0, 0, 0, 0, 0];
    const charges = rateWith(tariff, series(from, to, 300, (_, i) => wh[i] * 1000), from, to);
    // Block 10:00-10:15: 6 kWh / 0.25 h = 24 kW. (Rolling 10:05-10:20 would give 32 kW; the 10:10 interval alone 36 kW.)
    expect(linesOf(charges, 'demand').map((l) => [l.quantity, l.amount])).toEqual([['24', '24.00']]);
  });

  it('aligns 60-minute windows to the local hour: :30 UTC in Asia/Kolkata', () => {
    const tariff = demandTariff({ windowMinutes: 60, flat: [{ id: 'flat', seasons: ['all'], tiers: [{ rate: '1' }] }] }, { timeZone: 'Asia/Kolkata' });
    const from = at('2026-06-10T03:00:00Z');
    const to = at('2026-06-10T06:00:00Z');
    // 4 kWh at 04:15Z (09:45 IST) and 4 kWh at 04:30Z (10:00 IST): different local hours, 4 kW each.
    // A UTC-aligned hour would have put both in 04:00-05:00Z: 8 kW.
    const readings = series(from, to, 900, (start) => (start === at('2026-06-10T04:15:00Z') || start === at('2026-06-10T04:30:00Z') ? 4_000_000 : 0));
    expect(linesOf(rateWith(tariff, readings, from, to), 'demand').map((l) => l.quantity)).toEqual(['4']);
  });

  it('uses interval demand when the interval is at least the demand window, or there is no window', () => {
    const from = local(LA, '2026-06-10T00:00');
    const to = local(LA, '2026-06-10T03:00');
    const hourly = series(from, to, 3600, (_, i) => [2_000_000, 5_000_000, 1_000_000][i]);
    for (const windowMinutes of [undefined, 15, 60] as const) {
      const tariff = demandTariff({ ...(windowMinutes ? { windowMinutes } : {}), flat: [{ id: 'flat', seasons: ['all'], tiers: [{ rate: '7.5' }] }] });
      expect(linesOf(rateWith(tariff, hourly, from, to), 'demand').map((l) => [l.quantity, l.amount])).toEqual([['5', '37.50']]);
    }
  });

  it('bills each flat demand charge on the maximum within its own seasons when the window spans a season change', () => {
    const tariff = demandTariff(
      {
        flat: [
          { id: 'summer', seasons: ['summer'], tiers: [{ rate: '5' }] },
          { id: 'winter', seasons: ['winter'], tiers: [{ rate: '3' }] },
        ],
      },
      { seasons: [{ id: 'summer', fromMonth: 6, toMonth: 9 }, { id: 'winter', fromMonth: 10, toMonth: 5 }], energy: undefined },
    );
    const from = local(LA, '2026-09-16T00:00');
    const to = local(LA, '2026-10-16T00:00');
    const october = local(LA, '2026-10-01T00:00');
    const readings = series(from, to, 900, (start, i) => (i === 100 ? 2_500_000 : start === october + 3_600_000 ? 1_500_000 : 250_000));
    expect(linesOf(rateWith(tariff, readings, from, to), 'demand').map((l) => [l.flatDemandPeriod, l.quantity, l.amount])).toEqual([
      ['summer', '10', '50.00'],
      ['winter', '6', '18.00'],
    ]);
  });

  it('computes demand exactly from milliwatt-hours: 1.234567 kWh in 5 minutes = 14.814804 kW', () => {
    const tariff = demandTariff({ flat: [{ id: 'flat', seasons: ['all'], tiers: [{ rate: '1' }] }] });
    const from = local(LA, '2026-06-10T00:00');
    const charges = rateWith(tariff, series(from, from + 300_000, 300, () => 1_234_567), from, from + 300_000);
    expect(linesOf(charges, 'demand')[0]).toMatchObject({ quantity: '14.814804', amount: '14.81' });
  });
});
