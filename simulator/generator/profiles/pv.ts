/**
 * Rooftop photovoltaics: output follows the sine of the sun's elevation between sunrise and sunset
 * (zero outside them, by construction), scaled by the peak power and system losses, times a per-day
 * clearness (sunny, hazy or overcast days) with more minute-to-minute flicker on partly cloudy days.
 *
 * A clear June day at 40 degrees north yields about 6.5 kWh per kWp, a clear December day about 2.
 */
import { drawGaussian, drawUnit, between, type UnitStream } from '../prng.js';
import { sinSolarElevation, type Site, type SunWindow } from '../sun.js';

export interface PvParams {
  /** Peak (nameplate) power, W. */
  peakW: number;
  /** Fraction of the nameplate delivered with the sun at zenith on a clear day (inverter, heat, soiling). */
  systemEfficiency: number;
}

/** Tags of the keyed draws of this module (distinct from other modules' tags). */
const CLEARNESS_TAG = 41;
/** Output goes with the sine of the sun's elevation to this power (air mass and angle of incidence). */
export const PV_ELEVATION_EXPONENT = 1.1;
/** Mean of `dayClearness` over days: 0.2 + 0.8 x E[1 - u^2] for u uniform. */
export const MEAN_CLEARNESS = 0.2 + 0.8 * (2 / 3);
/** Highest output per watt of nameplate: efficiency at most 0.85, the sun at most at zenith, flicker at most 1.3. */
export const PV_MAX_OUTPUT_PER_W = 0.85 * 1.3;
const FLICKER_TAG = 42;

export function drawPvParams(next: UnitStream): PvParams {
  return {
    peakW: Math.round(between(next(), 3_000, 9_000) / 100) * 100,
    systemEfficiency: between(next(), 0.72, 0.85),
  };
}

/** Clearness of local day `dayNumber` for the meter `key`, 0.2 (overcast) to 1 (clear), mostly fair. */
export function dayClearness(key: number, dayNumber: number): number {
  const u = drawUnit(key, CLEARNESS_TAG, dayNumber);
  return 0.2 + 0.8 * (1 - u * u);
}

/**
 * Mean PV output at `utcMs`, W: zero outside [sunrise, sunset) of `window`.
 * `flickerKey` varies the clouds minute to minute (the epoch minute is a good one).
 */
export function pvOutputW(
  p: PvParams,
  site: Site,
  window: SunWindow,
  utcMs: number,
  clearness: number,
  meterKeyValue: number,
): number {
  if (utcMs < window.sunriseMs || utcMs >= window.sunsetMs) return 0;
  const elevation = sinSolarElevation(site, window, utcMs);
  if (elevation <= 0) return 0;
  const flicker = 1 + (1 - clearness) * 0.5 * drawGaussian(meterKeyValue, FLICKER_TAG, Math.floor(utcMs / 60_000));
  return Math.max(0, p.peakW * p.systemEfficiency * elevation ** PV_ELEVATION_EXPONENT * clearness * Math.min(1.3, flicker));
}
