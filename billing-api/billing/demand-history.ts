/**
 * Demand ratchets at close, pure: which tariff of a cycle has a ratchet, the account's billing cycles it
 * looks back over, and each one's peak demand from the meter's stored readings, measured as the tariff
 * measures demand (a cycle without readings has a peak of 0), as the charges endpoint supplies them.
 */
import { peakDemandKw, type DemandHistoryEntry, type MeterInterval, type TariffDocument, type TariffTimelineEntry } from '../../rating/index.js';
import { cycleContaining, type BillingCycle } from './cycles.js';

/** The first document with a demand ratchet that rates a part of the window, if any. */
export function ratchetTariff(timeline: TariffTimelineEntry[], window: BillingCycle): TariffDocument | undefined {
  const sorted = [...timeline].sort((a, b) => a.from - b.from);
  return sorted.find((entry, i) => {
    const end = entry.to ?? sorted[i + 1]?.from ?? Number.POSITIVE_INFINITY;
    return entry.tariff.billingDemand !== undefined && entry.from < window.to && end > window.from;
  })?.tariff;
}

/** The account's cycles preceding `cycle`, latest first, as far back as the ratchet looks. */
export function precedingCycles(cycle: BillingCycle, tariff: TariffDocument, zone: string, billingDay: number): BillingCycle[] {
  const cycles: BillingCycle[] = [];
  let c = cycle;
  for (let k = 0; k < (tariff.billingDemand?.lookbackHorizonMonths ?? 0); k++) {
    c = cycleContaining(c.from - 1, zone, billingDay);
    cycles.push(c);
  }
  return cycles;
}

/** The peak demand of each cycle from the meter's readings of [earliest cycle start, latest cycle end). */
export function demandHistoryOf(tariff: TariffDocument, cycles: BillingCycle[], intervals: MeterInterval[], meterIntervalSeconds: number): DemandHistoryEntry[] {
  return cycles.map((c) => ({
    from: c.from,
    to: c.to,
    peakKw: peakDemandKw({ tariff, intervals: intervals.filter((i) => i.intervalStart >= c.from && i.intervalStart < c.to), span: c, meterIntervalSeconds }),
  }));
}
