/**
 * Rooftop PV sized for net metering, as installers size it: to cover about the home's whole annual use
 * (90-110%). Over a year the home then exports about what it imports, with a strong season: in summer
 * the export exceeds the import, in winter the import exceeds the export, and a kWh bank fills from
 * spring and drains in autumn and winter.
 *
 * The home's annual use and the array's annual yield per watt are estimated from the same models the
 * generator samples (household.ts, pv.ts, sun.ts, season.ts): twelve mid-month days, weekdays and
 * weekends, every hour, at the mean clearness of a day. Pure and deterministic.
 */
import type { LocalTime } from '../wall-clock.js';
import { between, type UnitStream } from '../prng.js';
import { coolingSeason, heatingSeason } from '../season.js';
import { sinSolarElevation, sunWindow, type Site } from '../sun.js';
import { APPLIANCE_SPIKE_MAX_W, householdLoadW, type HouseholdParams } from './household.js';
import { MEAN_CLEARNESS, PV_ELEVATION_EXPONENT, type PvParams } from './pv.js';

/** Share of the estimated annual use that the array is sized to produce, drawn per home. */
export const SIZING_RATIO = { min: 0.9, max: 1.1 } as const;
/** Appliance bursts per day and their mean energy (see meter-model.ts): 4 a day of 1.2-2.5 kW for 2-10 min. */
const SPIKE_KWH_PER_DAY = 4 * ((1_200 + APPLIANCE_SPIKE_MAX_W) / 2) * (6 / 60) / 1000;
/** Hourly midpoints: the daily bumps are wider than an hour, so the sum is within a fraction of a percent. */
const STEP_HOURS = 1;
const MID_MONTH_DAY_OF_YEAR = [15, 46, 74, 105, 135, 166, 196, 227, 258, 288, 319, 349];

/** Estimated mean daily use of a home, kWh (noise has mean 1; appliance bursts included). */
export function householdDailyKwh(p: HouseholdParams, latitude: number): number {
  let total = 0;
  for (const dayOfYear of MID_MONTH_DAY_OF_YEAR) {
    const heating = heatingSeason(dayOfYear, latitude);
    const cooling = coolingSeason(dayOfYear, latitude);
    for (const [weekday, weight] of [[3, 5 / 7], [6, 2 / 7]] as const) {
      let wh = 0;
      for (let hour = STEP_HOURS / 2; hour < 24; hour += STEP_HOURS) {
        const local: LocalTime = { year: 2025, month: 1, day: 1, hour, weekday, dayOfYear, dayNumber: 0, offsetMinutes: 0 };
        wh += householdLoadW(p, local, heating, cooling) * STEP_HOURS;
      }
      total += (weight * wh) / 1000;
    }
  }
  return total / MID_MONTH_DAY_OF_YEAR.length + SPIKE_KWH_PER_DAY;
}

const yieldCache = new Map<string, number>();

/**
 * Mean daily energy of one watt of nameplate at `site` with a system efficiency of 1, Wh: the sine of the
 * sun's elevation (to the model's exponent) over the daylight of twelve mid-month days, times the mean
 * clearness of a day.
 */
export function dailyYieldWhPerW(site: Site): number {
  const key = `${site.latitude},${site.longitude}`;
  const cached = yieldCache.get(key);
  if (cached !== undefined) return cached;
  let total = 0;
  for (const [index, dayOfYear] of MID_MONTH_DAY_OF_YEAR.entries()) {
    const window = sunWindow(site, 2025, index + 1, 15, dayOfYear);
    const stepMs = 300_000;
    for (let t = window.sunriseMs + stepMs / 2; t < window.sunsetMs; t += stepMs) {
      const elevation = sinSolarElevation(site, window, t);
      if (elevation > 0) total += elevation ** PV_ELEVATION_EXPONENT * (stepMs / 3_600_000);
    }
  }
  const value = (total / MID_MONTH_DAY_OF_YEAR.length) * MEAN_CLEARNESS;
  yieldCache.set(key, value);
  return value;
}

/** A net-metering array for the home `household` at `site`: sized to 90-110% of its annual use, to 100 W. */
export function drawSizedPvParams(next: UnitStream, household: HouseholdParams, site: Site): PvParams {
  const systemEfficiency = between(next(), 0.72, 0.85);
  const sizingRatio = between(next(), SIZING_RATIO.min, SIZING_RATIO.max);
  const wattsNeeded = (householdDailyKwh(household, site.latitude) * 1000 * sizingRatio) / (dailyYieldWhPerW(site) * systemEfficiency);
  return { peakW: Math.max(1_000, Math.round(wattsNeeded / 100) * 100), systemEfficiency };
}
