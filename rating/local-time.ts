/**
 * The rating core's clock is the product's one clock, common/time.ts (the only module of ours that
 * rating/ imports): `ZoneClock` (local day, minute of day, start of a local day from cached UTC offsets,
 * DST-correct), `isoUtc` and the calendar arithmetic of day numbers. Vocabulary there: an *instant* is epoch
 * milliseconds UTC; a *local day number* counts local calendar days since 1970-01-01; *minute of day* is
 * the local wall-clock minute, 0..1439, so the repeated hour of a fall-back day yields the same minutes twice.
 */
export { civilFromDayNumber, DAY_MS, dayNumberOf, daysInMonth, isoUtc, isoWeekdayOf, MINUTE_MS, ZoneClock, type LocalTime } from '../common/time.js';
