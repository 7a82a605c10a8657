/**
 * Where the sun is, for solar generation: a textbook approximation (Cooper's declination, the usual
 * equation-of-time fit, sunrise at -0.833 degrees for refraction and the solar disc). Good to a few
 * minutes at mid latitudes, which is all a load profile needs.
 */
import { utcMillis } from '../../common/time.js';
import { MS_PER_DAY } from './wall-clock.js';

const DEG = Math.PI / 180;
const MS_PER_HOUR = 3_600_000;
/** Elevation of the sun's centre at sunrise and sunset, in degrees. */
const SUNRISE_ELEVATION_DEG = -0.833;

/** Position of a meter on Earth, in degrees (north and east positive). */
export interface Site {
  latitude: number;
  longitude: number;
}

/** Daylight of one local calendar day, as UTC instants (epoch milliseconds). */
export interface SunWindow {
  /** Sunrise; equals `solarNoonMs` when the sun never rises (polar night). */
  sunriseMs: number;
  solarNoonMs: number;
  /** Sunset; `sunsetMs - sunriseMs` is the day length (a full day in polar summer). */
  sunsetMs: number;
  /** Solar declination of that day, radians. */
  declination: number;
}

/** Solar declination in radians on day `dayOfYear` (1-366). */
export function solarDeclination(dayOfYear: number): number {
  return 23.44 * DEG * Math.sin((2 * Math.PI * (284 + dayOfYear)) / 365);
}

/** Equation of time in minutes (apparent minus mean solar time) on day `dayOfYear`. */
export function equationOfTimeMinutes(dayOfYear: number): number {
  const b = (2 * Math.PI * (dayOfYear - 81)) / 364;
  return 9.87 * Math.sin(2 * b) - 7.53 * Math.cos(b) - 1.5 * Math.sin(b);
}

/**
 * Sunrise, solar noon and sunset of the local calendar date `year-month-day` at `site`.
 * Solar noon is 12:00 local mean solar time (longitude), corrected by the equation of time.
 */
export function sunWindow(site: Site, year: number, month: number, day: number, dayOfYear: number): SunWindow {
  const declination = solarDeclination(dayOfYear);
  const solarNoonMs =
    utcMillis(year, month, day, 12) -
    (site.longitude / 15) * MS_PER_HOUR -
    equationOfTimeMinutes(dayOfYear) * 60_000;
  const phi = site.latitude * DEG;
  const cosHalfDay =
    (Math.sin(SUNRISE_ELEVATION_DEG * DEG) - Math.sin(phi) * Math.sin(declination)) /
    (Math.cos(phi) * Math.cos(declination));
  const halfDayRad = Math.acos(Math.min(1, Math.max(-1, cosHalfDay)));
  const halfDayMs = (halfDayRad / (2 * Math.PI)) * MS_PER_DAY;
  return { sunriseMs: solarNoonMs - halfDayMs, solarNoonMs, sunsetMs: solarNoonMs + halfDayMs, declination };
}

/** Sine of the sun's elevation at `utcMs` (negative below the horizon). */
export function sinSolarElevation(site: Site, window: SunWindow, utcMs: number): number {
  const hourAngle = (2 * Math.PI * (utcMs - window.solarNoonMs)) / MS_PER_DAY;
  const phi = site.latitude * DEG;
  return (
    Math.sin(phi) * Math.sin(window.declination) +
    Math.cos(phi) * Math.cos(window.declination) * Math.cos(hourAngle)
  );
}
