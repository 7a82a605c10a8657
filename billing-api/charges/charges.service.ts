/**
 * Charges of a meter for any window, rated at the moment of the request from the readings committed
 * then (contract section 3, GET /v1/meters/{id}/charges). The rating itself is the pure core in rating/;
 * this service only loads its inputs: the meter, its tariff timeline and its intervals in the window (one
 * round trip, ./charges.repository.ts), the tariff documents from the tariffs repository's cache of
 * immutable versions (so the rating core compiles a tariff once per process), and, for a tariff with a
 * demand ratchet, the peaks of the preceding billing cycles.
 */
import { isoUtc } from '../../common/time.js';
import {
  peakDemandKw,
  rateWindow,
  type Charges,
  type DemandHistoryEntry,
  type MeterInterval,
  type TariffDocument,
  type TariffTimelineEntry,
} from '../../rating/index.js';
import { cycleContaining } from '../billing/cycles.js';
import { NoTariffAssigned, NotFound } from '../domain-errors.js';
import { decodePackedIntervalsBase64 } from '../readings/packed-intervals.js';
import type { TariffsRepository } from '../tariffs/tariffs.repository.js';
import type { ChargesRepository } from './charges.repository.js';

export interface MeterCharges extends Omit<Charges, 'tariffIds'> {
  meterId: string;
  from: string;
  to: string;
  /** the tariff in effect at the end of the window (the contract's single id) */
  tariffId: string;
  /** every tariff that rated a part of the window, in time order */
  tariffIds: string[];
}

export interface ForMeterOptions {
  /** the billing cycle the window belongs to ($/month proration), see rateWindow */
  billingCycle?: { from: number; to: number };
  /**
   * Only read the meter's intervals when it belongs to this account (a customer's): for another account's
   * meter the query stops at the meter row, and `authorize` refuses.
   */
  scopeAccountId?: string | null;
  /** Called with the meter's account before anything is rated; throws to refuse (e.g. 404 to a customer). */
  authorize?: (accountId: string) => void;
}

export class ChargesService {
  constructor(
    private readonly repo: ChargesRepository,
    private readonly tariffs: TariffsRepository,
  ) {}

  /** The stored intervals of a meter with intervalStart in [from, to), sorted by start. */
  async intervals(meterId: string, from: number, to: number): Promise<MeterInterval[]> {
    const inputs = await this.repo.inputs(meterId, from, to, null);
    return inputs ? decodePackedIntervalsBase64(inputs.packed, inputs.intervalSeconds) : [];
  }

  /** Throws NotFound (no such meter, or outside the scope), NoTariffAssigned, or the rating core's RatingError. */
  async forMeter(meterId: string, from: number, to: number, opts: ForMeterOptions = {}): Promise<MeterCharges> {
    const inputs = await this.repo.inputs(meterId, from, to, opts.scopeAccountId ?? null);
    if (!inputs) throw new NotFound(`meter "${meterId}"`);
    opts.authorize?.(inputs.accountId);
    if (opts.scopeAccountId != null && inputs.accountId !== opts.scopeAccountId) throw new NotFound(`meter "${meterId}"`);
    if (!inputs.assignments.length) throw new NoTariffAssigned(meterId);
    await this.tariffs.versionDocuments(inputs.assignments.flatMap(([id, , versions]) => versions.map((version) => ({ id, version }))));
    const intervals = decodePackedIntervalsBase64(inputs.packed, inputs.intervalSeconds);
    const tariffTimeline = this.tariffs.timelineOf(inputs.assignments).timeline;
    const ratchet = ratchetTariff(tariffTimeline, from, to);
    const demandHistory = ratchet ? await this.demandHistory(meterId, inputs.accountId, inputs.intervalSeconds, from, ratchet) : undefined;
    const charges = rateWindow({
      tariffTimeline,
      intervals,
      billingWindow: { from, to },
      meterIntervalSeconds: inputs.intervalSeconds,
      billingCycle: opts.billingCycle,
      ...(demandHistory ? { demandHistory } : {}),
    });
    const { tariffIds, ...rest } = charges;
    return {
      meterId,
      from: isoUtc(from),
      to: isoUtc(to),
      ...rest,
      tariffId: charges.pieces[charges.pieces.length - 1]?.tariffId ?? tariffIds[tariffIds.length - 1],
      tariffIds,
    };
  }

  /**
   * The peak demand of each of the billing cycles (the account's) preceding the one that holds `from`, as
   * far back as the ratchet looks, from the stored readings and measured as the tariff measures demand.
   * A cycle without readings has a peak of 0.
   */
  private async demandHistory(meterId: string, accountId: string, intervalSeconds: number, from: number, tariff: TariffDocument): Promise<DemandHistoryEntry[]> {
    const account = await this.repo.accountCycle(accountId);
    if (!account) return [];
    const { timezone, billingDay } = account;
    const cycles: { from: number; to: number }[] = [];
    let cycle = cycleContaining(from, timezone, billingDay);
    for (let k = 0; k < tariff.billingDemand!.lookbackHorizonMonths; k++) {
      cycle = cycleContaining(cycle.from - 1, timezone, billingDay);
      cycles.push(cycle);
    }
    const earliest = cycles[cycles.length - 1].from;
    const intervals = await this.intervals(meterId, earliest, cycles[0].to);
    return cycles.map((c) => {
      const inCycle = intervals.filter((i) => i.intervalStart >= c.from && i.intervalStart < c.to);
      return { from: c.from, to: c.to, peakKw: peakDemandKw({ tariff, intervals: inCycle, span: c, meterIntervalSeconds: intervalSeconds }) };
    });
  }
}

/** The first document with a demand ratchet that rates a part of [from, to), if any. */
function ratchetTariff(timeline: TariffTimelineEntry[], from: number, to: number): TariffDocument | undefined {
  const sorted = [...timeline].sort((a, b) => a.from - b.from);
  return sorted.find((entry, i) => {
    const end = entry.to ?? sorted[i + 1]?.from ?? Number.POSITIVE_INFINITY;
    return entry.tariff.billingDemand !== undefined && entry.from < to && end > from;
  })?.tariff;
}
