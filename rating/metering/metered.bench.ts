/**
 * `npx vitest bench rating/metering`: what a net-metered meter costs to rate. Running charges of the open
 * cycle under net metering rate every window since the settlement year started (here the worst case:
 * the twelfth window, a year of 15-minute data, 35 040 intervals); one window alone for comparison.
 */
import { bench, describe } from 'vitest';
import { exampleTariff, type MeterInterval } from '../index.js';
import { local, series } from '../test-support.js';
import { rateMeteredWindows } from './billing-windows.js';
import { resolveMetering } from './options.js';

const zone = exampleTariff.timeZone;
const from = local(zone, '2026-01-01T00:00');
const to = local(zone, '2027-01-01T00:00');
const intervals: MeterInterval[] = series(from, to, 900, (_, i) => 150_000 + ((i * 7919) % 600_000), (_, i) => (i % 96 > 36 && i % 96 < 64 ? 900_000 : 0));
const windows = Array.from({ length: 12 }, (_, m) => {
  const window = { from: local(zone, `2026-${String(m + 1).padStart(2, '0')}-01T00:00`), to: m === 11 ? to : local(zone, `2026-${String(m + 2).padStart(2, '0')}-01T00:00`) };
  return { window, billingCycle: window };
});
const timeline = [{ from: 0, tariff: exampleTariff }];

describe('rateMeteredWindows', () => {
  bench('net metering, kWh bank: 12 windows of 15-minute intervals (a settlement year)', () => {
    rateMeteredWindows({ tariffTimeline: timeline, intervals, meterIntervalSeconds: 900, windows, metering: resolveMetering({ netMetering: { trueUpSellRate: '0.03' } }) });
  });
  bench('net billing with a money balance: 12 windows', () => {
    rateMeteredWindows({ tariffTimeline: timeline, intervals, meterIntervalSeconds: 900, windows, metering: resolveMetering({ netBilling: {} }) });
  });
  bench('net metering, one window (July)', () => {
    rateMeteredWindows({ tariffTimeline: timeline, intervals, meterIntervalSeconds: 900, windows: [windows[6]], metering: resolveMetering({ netMetering: {} }) });
  });
});
