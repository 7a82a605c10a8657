/**
 * NREL SAM's rules for net metering (`utilityrate5`, `ur_calc` and `shared/lib_utility_rate_equations.cpp`
 * `transfer_surplus`), kept in one place. They are what the reference URDB bill calculator computes and
 * what the peer-conformance figures pin; several look arbitrary, and each is followed here on purpose so
 * that a URDB import bills as SAM does. Each rule says why it is as it is.
 */
import type { ResolvedTier } from '../energy-tiers.js';
import type { TouClassifier } from '../classify.js';
import { Dec, fromMilli, ZERO } from '../money.js';

/**
 * Local hours at which SAM samples a month's weekday energy schedule to carry a kWh bank from one month
 * to the next. SAM keys banks by period number, and periods change from season to season (a winter
 * "p1" need not exist in summer), so it maps a period of month m-1 to the period that occupies the same
 * time of day in month m: a surplus in period q goes to the first of these four slots where q occurs in
 * month m-1, and from there to the period in that slot in month m. A period occupying none of the slots
 * loses its surplus (SAM logs a notice). Peer figures: `sam-residential-nem-kwh-bank`,
 * `sam-residential-tiers-kwh-daily`.
 */
export const BANK_SLOT_HOURS = [0, 5, 11, 17] as const;

/**
 * The energy period index at each slot hour of a weekday of the local month that holds `instant`: the
 * first weekday of that month whose day has no DST change (SAM's schedules are 12 x 24 tables without
 * DST; a native tariff is sampled on an ordinary weekday). -1 where no energy period applies.
 */
export function bankSlots(classifier: TouClassifier, instant: number): number[] {
  const clock = classifier.clock;
  const local = clock.localTime(instant);
  const firstDay = local.dayNumber - (local.day - 1);
  let fallback: number | null = null;
  for (let day = firstDay; day < firstDay + 31; day++) {
    const start = clock.startOfDay(day);
    const next = clock.startOfDay(day + 1);
    if (clock.localTime(start).month !== local.month) break;
    const cls = classifier.classify(start + 12 * 3_600_000);
    if (cls.dayType !== 'weekday') continue;
    if (next - start !== 86_400_000) {
      fallback ??= day;
      continue;
    }
    return BANK_SLOT_HOURS.map((h) => classifier.classify(start + h * 3_600_000).energyPeriod);
  }
  const day = fallback ?? firstDay;
  return BANK_SLOT_HOURS.map((h) => classifier.classify(clock.startOfDay(day) + h * 3_600_000).energyPeriod);
}

/**
 * The slot a period's surplus travels in: the first slot of `slots` holding `period`, or null when none
 * does (the surplus is dropped, as SAM drops it).
 */
export function slotOfPeriod(slots: number[], period: number): number | null {
  const i = slots.indexOf(period);
  return i < 0 ? null : i;
}

/**
 * The month whose window settles the annual minimum (URDB `annualmincharge`): December, over the bills of
 * January to December, whatever the true-up month. SAM assumes the system comes online on January 1 and
 * applies the annual minimum in its twelfth month (`ur_calc`: "PG&E assesses monthly bills 12 months after
 * interconnection"); each month's bill counts floored at 0, with fixed charges, before minimums and before
 * the true-up. Peer figures: `sam-residential-nem-kwh-bank` (annual minimum), `sam-residential-net-billing-
 * carryover` (`dec-trueup-annual-min`: 31.75 billed, 68.25 added).
 */
export const ANNUAL_MINIMUM_MONTH = 12;

/**
 * The running all-period net surplus SAM pays at the true-up:
 * X_m = max(X_{m-1} + sum over periods of (export - import) of month m, 0), X = 0 after a true-up.
 * It is not the sum of the period banks: banks never offset another period's imports, X does. SAM pays
 * X x true-up rate (`year1_true_up_credits`), which is what its figures assert (75.95 for the residential
 * case, where the banks would be worth 84.14).
 */
export function nextRunningNet(previous: Dec, windowNetKwh: Dec): Dec {
  const x = previous.plus(windowNetKwh);
  return x.isNegative() ? ZERO : x;
}

/**
 * Splits per-period quantities across tiers pro rata, as SAM does under net metering: the tier limits
 * apply to the total of all periods, and each period takes its share (its quantity / the total) of each
 * tier's kWh. Not time order, because a monthly net has no time. SAM requires the limits to agree
 * between the periods of a month; where a native tariff's do not, each period's own limits are applied to
 * the total. With tierScope "period" each period fills its own tiers. `tiers[p]` are period p's tiers as
 * the core resolves them for the window (units, days, billing demand and SAM's kWh/kW blocks, see
 * energy-tiers.ts). Result: per period, [tier index, kWh] for each tier reached; quantities rounded
 * half-up to 6 decimals (a mWh).
 */
export function proRataTiers(quantities: Map<number, Dec>, tiers: ResolvedTier[][], scope: 'window' | 'period' = 'window'): Map<number, [number, Dec][]> {
  let windowTotal = ZERO;
  for (const q of quantities.values()) windowTotal = windowTotal.plus(q);
  const result = new Map<number, [number, Dec][]>();
  for (const [p, q] of quantities) {
    if (!q.gt(0)) continue;
    // a tariff whose tiers count each period's own kWh (tierScope "period") fills them with the period's net alone
    const total = scope === 'period' ? q : windowTotal;
    let lower = ZERO;
    const split: [number, Dec][] = [];
    for (const tier of tiers[p]) {
      const limit = tier.upper === null ? null : fromMilli(tier.upper);
      const upper = limit === null || limit.gt(total) ? total : limit;
      if (upper.gt(lower)) {
        split.push([tier.index, upper.minus(lower).mul(q).div(total).toDecimalPlaces(6, Dec.ROUND_HALF_UP)]);
        lower = upper;
      }
    }
    result.set(p, split);
  }
  return result;
}
