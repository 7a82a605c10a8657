/**
 * Tariffs, readings and windows for the metering tests.
 */
import type { MeterInterval } from '../intervals.js';
import type { TariffDocument } from '../tariff.schema.js';
import { local } from '../test-support.js';

export const ZONE = 'America/Phoenix';
export const KWH = 1_000_000; // mWh

/**
 * Two seasons. Winter weekdays: off-peak, a shoulder 12:00-14:00 (which occupies none of SAM's bank slots
 * 00, 05, 11, 17) and a winter peak 17:00-21:00; summer weekdays: off-peak and a summer peak 15:00-20:00.
 */
export const touTariff: TariffDocument = {
  id: 'tou',
  name: 'TOU with two seasons',
  currency: { code: 'USD', minorUnit: 2 },
  timeZone: ZONE,
  seasons: [
    { id: 'summer', fromMonth: 6, toMonth: 9 },
    { id: 'winter', fromMonth: 10, toMonth: 5 },
  ],
  energy: {
    periods: [
      { id: 'off', tiers: [{ rate: '0.10' }], sell: '0.04' },
      { id: 'shoulder', tiers: [{ rate: '0.15' }], sell: '0.05' },
      { id: 'peak_w', tiers: [{ rate: '0.20' }], sell: '0.06' },
      { id: 'peak_s', tiers: [{ rate: '0.30' }], sell: '0.08' },
    ],
    schedule: [
      {
        seasons: ['winter'],
        dayTypes: ['weekday'],
        periods: [
          { from: '00:00', period: 'off' },
          { from: '12:00', period: 'shoulder' },
          { from: '14:00', period: 'off' },
          { from: '17:00', period: 'peak_w' },
          { from: '21:00', period: 'off' },
        ],
      },
      {
        seasons: ['summer'],
        dayTypes: ['weekday'],
        periods: [
          { from: '00:00', period: 'off' },
          { from: '15:00', period: 'peak_s' },
          { from: '20:00', period: 'off' },
        ],
      },
      { seasons: ['winter', 'summer'], dayTypes: ['weekend'], periods: [{ from: '00:00', period: 'off' }] },
    ],
  },
  fixedCharges: [{ name: 'Customer charge', amount: '5', per: 'month' }],
};

export function reading(zone: string, wallClock: string, importKwh: number, exportKwh: number, seconds = 3600): MeterInterval {
  return { intervalStart: local(zone, wallClock), intervalSeconds: seconds, importMwh: importKwh * KWH, exportMwh: exportKwh * KWH, quality: 'actual' };
}

/** Calendar-month windows of 2018 in the zone, from `fromMonth` to `toMonth` (inclusive). */
export function months(zone: string, year: number, fromMonth: number, toMonth: number) {
  const windows = [];
  for (let m = fromMonth; m <= toMonth; m++) {
    const from = local(zone, `${year + Math.floor((m - 1) / 12)}-${String(((m - 1) % 12) + 1).padStart(2, '0')}-01T00:00`);
    const to = local(zone, `${year + Math.floor(m / 12)}-${String((m % 12) + 1).padStart(2, '0')}-01T00:00`);
    windows.push({ window: { from, to }, billingCycle: { from, to } });
  }
  return windows;
}

