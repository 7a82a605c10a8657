/**
 * Rating one meter's billing cycle at close, pure: the cycle's stored intervals, estimates for its gaps
 * (VEE, ./estimation.ts), the rating core over the part of the cycle in service (`cycleInService`, which
 * the running charges of the open cycle share), validation warnings (./validation.ts), and the meter's
 * section of the bill. No database, no clock: the billing service loads the inputs and stores the outputs.
 */
import { EMPTY_METERING_STATE, rateWindow, RatingError, type Charges, type DemandHistoryEntry, type MeterInterval, type MeteringState, type RateWindowInput, type TariffDocument, type TariffTimelineEntry } from '../../rating/index.js';
import { isoUtc } from '../../common/time.js';
import type { MeterBillSection } from './bill-document.js';
import type { BillingCycle } from './cycles.js';
import { estimateGaps, type Estimate } from './estimation.js';
import type { MeterTariffs, TariffVersionRef } from '../tariffs/tariffs.repository.js';
import { validateCycle } from './validation.js';
import { serviceEndsIn, serviceStartsIn, serviceWindow, timelineWithin, type ServiceSpan } from './service-span.js';

/** The stored version of a tariff document (the tariff repository knows it). */
export type VersionOf = (document: TariffDocument) => TariffVersionRef;

export interface CycleMeter {
  id: string;
  timezone: string;
  intervalSeconds: number;
}

export interface RatedMeterCycle {
  charges: Charges;
  section: MeterBillSection;
  /** the estimates this close stores (quality 'estimated') */
  estimates: Estimate[];
  /** the currency's minor unit (decimal places of the bill's amounts) */
  minorUnit: number;
}

export interface MeterCycleInput {
  cycle: BillingCycle;
  meter: CycleMeter;
  /** stored intervals of the cycle and of the neighbour margin around it (estimation looks at both), sorted */
  readings: MeterInterval[];
  /** actual intervals of the weeks before the cycle, for same-weekday profiles (only when a gap needs one) */
  history?: MeterInterval[];
  tariffs: MeterTariffs;
  versionOf: VersionOf;
  /** the meter's explicit service span: the cycle is rated only where the meter is in service (./service-span.ts) */
  service?: ServiceSpan;
  /**
   * What is carried into the cycle (../charges/rating-history.ts `carriedIntoCycle`): the peaks of the
   * preceding cycles for a demand ratchet, the metering state (kWh banks, balances) for a tariff that
   * carries across cycles
   */
  carried?: { demandHistory?: DemandHistoryEntry[]; carriedIn?: MeteringState };
}

/** Rates a meter's cycle; throws RatingError when it cannot be rated (no tariff, a gap in the timeline ...). */
export function rateMeterCycle({ cycle, meter, readings, history, tariffs, versionOf, service, carried }: MeterCycleInput): RatedMeterCycle {
  if (!tariffs.hasAssignment) throw new RatingError('no_tariff_in_effect', `meter "${meter.id}" has no tariff assigned`, []);
  // Only the part of the cycle in service is estimated, validated and rated, with the tariff in effect there only.
  const { window, partial, rating } = cycleInService({ cycle, service, tariffTimeline: tariffs.timeline, carried });
  const historyMap = history ? new Map(history.map((r) => [r.intervalStart, { importMwh: Number(r.importMwh), exportMwh: Number(r.exportMwh) }])) : undefined;
  const estimation = estimateGaps({ cycle: window, intervalSeconds: meter.intervalSeconds, zone: meter.timezone, readings, history: historyMap });
  const stored = readings.filter((r) => r.intervalStart >= window.from && r.intervalStart < window.to);
  const intervals: MeterInterval[] = [
    ...stored,
    ...estimation.estimates.map((e) => ({ intervalStart: e.intervalStart, intervalSeconds: meter.intervalSeconds, importMwh: e.importMwh, exportMwh: e.exportMwh, quality: 'estimated' as const })),
  ];
  const charges = rateWindow({ ...rating, intervals, meterIntervalSeconds: meter.intervalSeconds });
  const validation = validateCycle(stored, meter.intervalSeconds, estimation.unestimated);
  const section: MeterBillSection = {
    meterId: meter.id,
    intervalSeconds: meter.intervalSeconds,
    tariffId: charges.pieces[charges.pieces.length - 1].tariffId,
    tariffIds: charges.tariffIds,
    tariffVersions: tariffVersionsIn(tariffs, window, versionOf),
    lines: charges.lines,
    subtotal: charges.subtotal,
    taxes: charges.taxes,
    total: charges.total,
    asOf: charges.asOf,
    coverage: charges.coverage,
    pieces: charges.pieces,
    estimated: {
      linear: estimation.estimates.filter((e) => e.method === 'linear').length,
      profile: estimation.estimates.filter((e) => e.method === 'profile').length,
    },
    warnings: validation.warnings,
    warningsOmitted: validation.omitted,
    ...(partial ? { inService: { from: isoUtc(window.from), to: isoUtc(window.to) } } : {}),
    ...(charges.notes?.length ? { notes: charges.notes } : {}),
    ...(charges.metering ? { metering: charges.metering } : {}),
  };
  return { charges, section, estimates: estimation.estimates, minorUnit: minorUnitOf(charges, tariffs) };
}

/** A meter's cycle as it is rated within its service span (see `cycleInService`). */
export interface CycleInService {
  /** the part of the cycle in service (the whole cycle without an explicit span cutting it) */
  window: BillingCycle;
  /** the window is only a part of the cycle */
  partial: boolean;
  /** everything the rating core is given except the intervals and the meter's interval length */
  rating: Omit<RateWindowInput, 'intervals' | 'meterIntervalSeconds'>;
}

/**
 * How a meter's cycle is rated within its service span, pure; the close of a cycle and the running charges
 * of the open cycle both rate this way. The window is the part of the cycle in service, rated with the
 * tariff in effect there only; under a tariff that carries across cycles a service start inside the cycle
 * begins with nothing carried, and the cycle of a service end is the meter's final window, which settles
 * what it carries (./service-span.ts). A meter not in service during the cycle is rated over the whole
 * cycle here: callers leave such meters out.
 */
export function cycleInService({ cycle, service, tariffTimeline, carried }: {
  cycle: BillingCycle;
  service?: ServiceSpan;
  tariffTimeline: TariffTimelineEntry[];
  carried?: { demandHistory?: DemandHistoryEntry[]; carriedIn?: MeteringState };
}): CycleInService {
  const window = serviceWindow(cycle, service) ?? cycle;
  const partial = window.from !== cycle.from || window.to !== cycle.to;
  const carriedIn = carried?.carriedIn && serviceStartsIn(cycle, service) ? EMPTY_METERING_STATE : carried?.carriedIn;
  return {
    window,
    partial,
    rating: {
      tariffTimeline: partial ? timelineWithin(tariffTimeline, window) : tariffTimeline,
      billingWindow: window,
      billingCycle: cycle,
      ...(carried?.demandHistory ? { demandHistory: carried.demandHistory } : {}),
      ...(carriedIn ? { carriedIn } : {}),
      ...(serviceEndsIn(cycle, service) ? { finalWindow: true } : {}),
    },
  };
}

/** The tariff versions whose time in effect overlaps the cycle, in time order. */
export function tariffVersionsIn(tariffs: MeterTariffs, cycle: BillingCycle, versionOf: VersionOf): TariffVersionRef[] {
  const entries = [...tariffs.timeline].sort((a, b) => a.from - b.from);
  return entries
    .filter((e, i) => e.from < cycle.to && (e.to ?? entries[i + 1]?.from ?? Number.POSITIVE_INFINITY) > cycle.from)
    .map((e) => versionOf(e.tariff));
}

/** The minor unit of the currency of the tariff that rated the end of the window (the timeline's first when none). */
export function minorUnitOf(charges: Charges, tariffs: MeterTariffs): number {
  const entry = tariffs.timeline.find((e) => e.tariff.id === charges.pieces[charges.pieces.length - 1]?.tariffId) ?? tariffs.timeline[0];
  return entry.tariff.currency.minorUnit;
}
