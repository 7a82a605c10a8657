/**
 * A small commercial building (shop, office, workshop): a plateau during business hours with one-hour
 * ramps, a base load at night and on closed days (refrigeration, servers, security lighting), a short
 * Saturday for some, closed on Sundays, and HVAC that raises the plateau in summer (more) and winter.
 *
 * A 6-30 kW business uses roughly 80-450 kWh on a weekday, a third to a half of that on a Sunday.
 */
import type { LocalTime } from '../wall-clock.js';
import { between, type UnitStream } from '../prng.js';
import { openingHours } from './shapes.js';

export interface BusinessParams {
  /** Power during business hours, W. */
  plateauW: number;
  /** Base load as a fraction of the plateau (0.15-0.3). */
  baseFraction: number;
  /** Local hour the business opens on weekdays. */
  openHour: number;
  /** Local hour it closes on weekdays. */
  closeHour: number;
  /** Whether it opens on Saturday mornings (09:00-14:00, at 60% of the plateau). */
  opensSaturday: boolean;
}

export function drawBusinessParams(next: UnitStream): BusinessParams {
  return {
    plateauW: Math.round(between(next(), 6_000, 30_000)),
    baseFraction: between(next(), 0.15, 0.3),
    openHour: between(next(), 7, 9),
    closeHour: between(next(), 17, 20),
    opensSaturday: next() < 0.35,
  };
}

/** Mean power drawn by the business at local time `local`, W, before noise. */
export function businessLoadW(p: BusinessParams, local: LocalTime, heating: number, cooling: number): number {
  const baseW = p.plateauW * p.baseFraction;
  let open = 0;
  if (local.weekday <= 5) open = openingHours(local.hour, p.openHour, p.closeHour);
  else if (local.weekday === 6 && p.opensSaturday) open = 0.6 * openingHours(local.hour, 9, 14);
  const hvac = 1 + 0.3 * cooling + 0.15 * heating;
  return baseW + (p.plateauW - baseW) * open * hvac;
}

/** An upper bound of `businessLoadW`, W. */
export function businessPeakW(p: BusinessParams): number {
  return p.plateauW * 1.3;
}
