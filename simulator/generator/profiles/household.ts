/**
 * A household's consumption: always-on base load, a morning peak (later and broader at weekends), some
 * daytime activity, an evening peak (cooking, lighting, entertainment; longer in winter), and for some homes
 * electric heating in winter or air conditioning on summer afternoons.
 *
 * Calibrated so that a home uses about 8-16 kWh on a mild weekday, up to about 28 kWh with heating or
 * cooling: the range of European and North-American residential meters.
 */
import type { LocalTime } from '../wall-clock.js';
import { between, type UnitStream } from '../prng.js';
import { dailyBump } from './shapes.js';

export interface HouseholdParams {
  /** Always-on load (fridge, standby, network), W. */
  baseW: number;
  /** Size of the household's activity loads relative to an average home (0.6-1.25). */
  activityScale: number;
  /** Local hour of the weekday morning peak. */
  wakeHour: number;
  /** Local hour of the evening peak. */
  dinnerHour: number;
  /** Electric heating at the coldest time of year, W averaged over the day; 0 for homes heated otherwise. */
  heatingW: number;
  /** Air conditioning at the peak of the hottest afternoon, W; 0 for homes without. */
  coolingW: number;
}

/** Peak power of the short appliance bursts (kettle, oven, hair dryer) added as spikes, W. */
export const APPLIANCE_SPIKE_MAX_W = 2_500;

export function drawHouseholdParams(next: UnitStream): HouseholdParams {
  return {
    baseW: Math.round(between(next(), 150, 300)),
    activityScale: between(next(), 0.6, 1.25),
    wakeHour: between(next(), 6.25, 7.75),
    dinnerHour: between(next(), 18.25, 19.75),
    heatingW: next() < 0.25 ? Math.round(between(next(), 250, 450)) : 0,
    coolingW: next() < 0.45 ? Math.round(between(next(), 500, 1_000)) : 0,
  };
}

/**
 * Mean power drawn by the household at local time `local`, W, before noise.
 * `heating` and `cooling` are the season indicators (0-1) of that day.
 */
export function householdLoadW(p: HouseholdParams, local: LocalTime, heating: number, cooling: number): number {
  const weekend = local.weekday >= 6;
  const h = local.hour;
  const morning = weekend ? 650 * dailyBump(h, p.wakeHour + 1.75, 1.4) : 700 * dailyBump(h, p.wakeHour, 0.9);
  const daytime = weekend ? 450 * dailyBump(h, 13, 3) : 200 * dailyBump(h, 13, 3);
  const lighting = 1 + 0.3 * heating; // dark evenings
  const evening = 1_100 * lighting * dailyBump(h, p.dinnerHour, 1.7);
  const activity = p.activityScale * (morning + daytime + evening);
  const heatingDemand = 0.55 + 0.45 * Math.max(dailyBump(h, p.wakeHour, 2), dailyBump(h, p.dinnerHour, 2.5));
  const heatingW = p.heatingW * heating * heatingDemand;
  const coolingW = p.coolingW * cooling * dailyBump(h, 16, 3);
  return p.baseW + activity + heatingW + coolingW;
}

/** An upper bound of `householdLoadW`, W. */
export function householdPeakW(p: HouseholdParams): number {
  return p.baseW + p.activityScale * (700 + 450 + 1_100 * 1.3) + p.heatingW + p.coolingW;
}
