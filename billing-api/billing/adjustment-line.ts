/**
 * The adjustment for late data, pure: a billed period of a meter re-rated from the readings stored now, with
 * that period's tariffs and taxes, against what was billed for it so far (the meter's total on that bill
 * plus earlier adjustments). The difference is the adjustment line of the next bill; none when it is zero,
 * or when the period is now rated in another currency than it was billed in.
 */
import { isoUtc } from '../../common/time.js';
import { rateWindow, type DemandHistoryEntry, type MeteringState, type MeterInterval } from '../../rating/index.js';
import { canonicalJson } from './canonical-json.js';
import type { ServiceSpan } from './service-span.js';
import { isZeroMoney, moneyDifference, type AdjustmentLine } from './bill-document.js';
import { cycleInService, minorUnitOf, tariffVersionsIn, type VersionOf } from './rate-cycle.js';
import type { MeterTariffs } from '../tariffs/tariffs.repository.js';

export interface LatePeriod {
  meterId: string;
  meterIntervalSeconds: number;
  /** the bill whose charges for this meter are corrected, and its cycle */
  billId: string;
  cycleFrom: number;
  cycleTo: number;
  /** the meter's explicit service span (the period is re-rated where it was in service, as billed) */
  service?: ServiceSpan;
  /** what is carried into the period (../charges/rating-history.ts `carriedIntoCycle`), re-derived from the data stored now */
  demandHistory?: DemandHistoryEntry[];
  carriedIn?: MeteringState;
}

export interface BilledSoFar {
  /** the meter's total on the bill plus every adjustment of it so far; "0" when the bill had no such meter */
  previouslyBilled: string;
  currency: string;
  /** the state the period carried out as billed so far (the bill's meter section, or the latest adjustment of it), when stated */
  carriedOut?: MeteringState | null;
}

/**
 * The adjustment line of a late period, or null when re-rating changes nothing. Throws RatingError when the
 * period cannot be re-rated (the service then writes no adjustment and logs why).
 */
export function adjustmentLine(period: LatePeriod, readings: MeterInterval[], billed: BilledSoFar, tariffs: MeterTariffs, versionOf: VersionOf): AdjustmentLine | null {
  const cycle = { from: period.cycleFrom, to: period.cycleTo };
  // Rated as the cycle was closed (rate-cycle.ts): the part in service, nothing carried after a service
  // start inside it, the final window settling at a service end.
  const { window, rating } = cycleInService({ cycle, service: period.service, tariffTimeline: tariffs.timeline, carried: period });
  const charges = rateWindow({ ...rating, intervals: readings, meterIntervalSeconds: period.meterIntervalSeconds });
  if (charges.currency !== billed.currency) return null;
  const minorUnit = minorUnitOf(charges, tariffs);
  const amount = moneyDifference(charges.total, billed.previouslyBilled, minorUnit);
  const rerated = charges.metering?.carriedOut;
  const changed = rerated !== undefined && (billed.carriedOut == null || canonicalJson(billed.carriedOut) !== canonicalJson(rerated));
  // A changed carry-over is stated even when the amount is unchanged: the next cycles start from it.
  if (isZeroMoney(amount) && !changed) return null;
  return {
    type: 'adjustment',
    meterId: period.meterId,
    reason: 'late_data',
    correctsBillId: period.billId,
    period: { from: isoUtc(period.cycleFrom), to: isoUtc(period.cycleTo) },
    previouslyBilled: moneyDifference(billed.previouslyBilled, '0', minorUnit),
    rerated: { subtotal: charges.subtotal, taxes: charges.taxes, total: charges.total, coverage: charges.coverage, tariffVersions: tariffVersionsIn(tariffs, window, versionOf) },
    amount,
    ...(rerated ? { carriedOut: { billed: billed.carriedOut ?? null, rerated, changed } } : {}),
  };
}
