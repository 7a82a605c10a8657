/** Building blocks of daily load shapes. Hours are local wall-clock hours, fractional. */

/** A bell of height 1 centred on `centerHour` (standard deviation `widthHours`), wrapping at midnight. */
export function dailyBump(hour: number, centerHour: number, widthHours: number): number {
  let distance = Math.abs(hour - centerHour) % 24;
  if (distance > 12) distance = 24 - distance;
  return Math.exp(-0.5 * (distance / widthHours) ** 2);
}

/** 0 before `fromHour`, 1 after `fromHour + rampHours`, a smooth (cosine) ramp in between. */
export function rampUp(hour: number, fromHour: number, rampHours: number): number {
  if (hour <= fromHour) return 0;
  if (hour >= fromHour + rampHours) return 1;
  return 0.5 - 0.5 * Math.cos((Math.PI * (hour - fromHour)) / rampHours);
}

/** 1 between `openHour` and `closeHour`, with one-hour ramps inside those bounds, 0 outside. */
export function openingHours(hour: number, openHour: number, closeHour: number): number {
  return Math.min(rampUp(hour, openHour, 1), 1 - rampUp(hour, closeHour - 1, 1));
}
