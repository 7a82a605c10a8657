/**
 * Billing cycles: an account's cycle starts at local midnight (the account's time zone) of its billing day
 * and ends at local midnight of the billing day one month later; days 29-31 clamp to the month's last day
 * (billing day 31: 31 Jan -> 28 Feb -> 31 Mar -> 30 Apr ...). Cycles are half-open [from, to) instants,
 * contiguous, and a DST month simply has 743 or 745 hours. Pure: no clock, no I/O.
 */
import { DateTime, IANAZone } from 'luxon';

/** [from, to) epoch milliseconds UTC. */
export interface BillingCycle {
  from: number;
  to: number;
}

// Cycle arithmetic runs for every account of a billing run: luxon answers are memoized (they never change).
const starts = new Map<string, number>();
const validZones = new Set<string>();
const daysOfCycle = new Map<string, { firstDay: string; lastDay: string; days: number }>();

/** Local midnight at the start of `day` (clamped to the month) of year/month in `zone`. */
export function cycleStartIn(year: number, month: number, billingDay: number, zone: string): number {
  const key = `${zone}\u0000${year}\u0000${month}\u0000${billingDay}`;
  let start = starts.get(key);
  if (start === undefined) {
    const first = DateTime.fromObject({ year, month, day: 1 }, { zone });
    const day = Math.min(billingDay, first.daysInMonth!);
    // A midnight that does not exist (a zone whose DST starts at 00:00) resolves to the first instant after it.
    start = DateTime.fromObject({ year, month, day }, { zone }).toMillis();
    if (starts.size > 100_000) starts.clear();
    starts.set(key, start);
  }
  return start;
}

/** The billing cycle of an account that contains `instant`. */
export function cycleContaining(instant: number, zone: string, billingDay: number): BillingCycle {
  checkZone(zone);
  // Local calendar month of the instant, from the zone's offset.
  const local = new Date(instant + IANAZone.create(zone).offset(instant) * 60_000);
  let year = local.getUTCFullYear();
  let month = local.getUTCMonth() + 1;
  let from = cycleStartIn(year, month, billingDay, zone);
  if (instant < from) {
    [year, month] = month === 1 ? [year - 1, 12] : [year, month - 1];
    from = cycleStartIn(year, month, billingDay, zone);
  }
  const [nextYear, nextMonth] = month === 12 ? [year + 1, 1] : [year, month + 1];
  return { from, to: cycleStartIn(nextYear, nextMonth, billingDay, zone) };
}

/** The cycle after `cycle`. */
export function nextCycle(cycle: BillingCycle, zone: string, billingDay: number): BillingCycle {
  return cycleContaining(cycle.to, zone, billingDay);
}

/** Local calendar date (YYYY-MM-DD) of an instant in `zone`. */
export function localDate(instant: number, zone: string): string {
  return DateTime.fromMillis(instant, { zone }).toISODate()!;
}

/** First and last local calendar day of a cycle, and its number of local days. */
export function cycleDays(cycle: BillingCycle, zone: string): { firstDay: string; lastDay: string; days: number } {
  const key = `${zone}\u0000${cycle.from}\u0000${cycle.to}`;
  let days = daysOfCycle.get(key);
  if (!days) {
    const first = DateTime.fromMillis(cycle.from, { zone }).startOf('day');
    const end = DateTime.fromMillis(cycle.to, { zone }).startOf('day');
    days = { firstDay: first.toISODate()!, lastDay: end.minus({ days: 1 }).toISODate()!, days: Math.round(end.diff(first, 'days').days) };
    if (daysOfCycle.size > 100_000) daysOfCycle.clear();
    daysOfCycle.set(key, days);
  }
  return { ...days };
}

function checkZone(zone: string): void {
  if (validZones.has(zone)) return;
  if (!IANAZone.isValidZone(zone)) throw new RangeError(`not an IANA time zone: ${zone}`);
  validZones.add(zone);
}
