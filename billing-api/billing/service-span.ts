/**
 * The part of a billing cycle a meter is in service, and the tariff timeline limited to it, pure. A cycle
 * in which service starts or ends is rated as a window of the cycle whose tariff is in effect only while
 * the meter is in service: the rating core then prorates it as it prorates a tariff in effect for part of
 * a cycle (`$/month` charges and minimum charges by days in service / days of the cycle, `$/day` charges by
 * the days in service, kWh tier limits and demand by the same share), and rates nothing outside it.
 *
 * Under a tariff that carries across cycles (net metering, a net billing balance), a service start begins
 * with nothing carried, and the cycle in which service ends is the meter's final window: what it carries
 * is settled on that bill (rating/metering/README.md, "Service start and end").
 */
import type { TariffTimelineEntry } from '../../rating/index.js';
import type { BillingCycle } from './cycles.js';

export interface ServiceSpan {
  /** explicit service start (epoch ms), or null: in service from before the cycle */
  start: number | null;
  /** explicit service end, or null: still in service */
  end: number | null;
}

/** [from, to) of the cycle during which the meter is in service; null when none of it is. */
export function serviceWindow(cycle: BillingCycle, service: ServiceSpan | undefined): BillingCycle | null {
  const from = Math.max(cycle.from, service?.start ?? Number.NEGATIVE_INFINITY);
  const to = Math.min(cycle.to, service?.end ?? Number.POSITIVE_INFINITY);
  return from < to ? { from, to } : null;
}

/** The meter's service starts inside the cycle (after its start): nothing is carried into the cycle. */
export function serviceStartsIn(cycle: BillingCycle, service: ServiceSpan | undefined): boolean {
  return service?.start != null && service.start > cycle.from && service.start < cycle.to;
}

/** The meter's service ends inside the cycle or at its end: the cycle is the meter's last, its final window. */
export function serviceEndsIn(cycle: BillingCycle, service: ServiceSpan | undefined): boolean {
  return service?.end != null && service.end > cycle.from && service.end <= cycle.to;
}

/** The timeline with every entry limited to `window` (entries outside it dropped). */
export function timelineWithin(timeline: TariffTimelineEntry[], window: BillingCycle): TariffTimelineEntry[] {
  const sorted = [...timeline].sort((a, b) => a.from - b.from);
  return sorted.flatMap((entry, i) => {
    const from = Math.max(entry.from, window.from);
    const to = Math.min(entry.to ?? sorted[i + 1]?.from ?? Number.POSITIVE_INFINITY, window.to);
    return from < to ? [{ ...entry, from, to }] : [];
  });
}
