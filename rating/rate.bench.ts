/**
 * `npx vitest bench rating`: rating one meter-month of 15-minute data (2976 intervals) with the complete
 * example tariff (TOU energy with tiers, TOU and flat demand, export, fixed, minimum, taxes).
 */
import { bench, describe } from 'vitest';
import { exampleTariff, rateWindow, type MeterInterval } from './index.js';
import { local, series } from './test-support.js';

const from = local('America/Los_Angeles', '2026-07-01T00:00');
const to = local('America/Los_Angeles', '2026-08-01T00:00');
const intervals: MeterInterval[] = series(from, to, 900, (_, i) => 150_000 + ((i * 7919) % 600_000), (_, i) => (i % 96 > 40 && i % 96 < 60 ? 80_000 : 0));

describe('rateWindow', () => {
  bench('one meter, July, 15-minute intervals', () => {
    rateWindow({ tariffTimeline: [{ from: 0, tariff: exampleTariff }], intervals, billingWindow: { from, to }, meterIntervalSeconds: 900 });
  });
});
