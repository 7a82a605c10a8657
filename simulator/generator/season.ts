/**
 * How far into the heating or cooling season a day is, 0 to 1, by day of year and hemisphere.
 * A smooth annual cycle: the coldest day is mid-January in the north (mid-July in the south).
 */

/** 1 on the coldest day of the year, 0 from the spring equinox to the autumn one. */
export function heatingSeason(dayOfYear: number, latitude: number): number {
  return Math.max(0, coldness(dayOfYear, latitude));
}

/** 1 on the hottest day of the year, 0 from the autumn equinox to the spring one. */
export function coolingSeason(dayOfYear: number, latitude: number): number {
  return Math.max(0, -coldness(dayOfYear, latitude));
}

function coldness(dayOfYear: number, latitude: number): number {
  const northern = Math.cos((2 * Math.PI * (dayOfYear - 15)) / 365.25);
  return latitude >= 0 ? northern : -northern;
}
