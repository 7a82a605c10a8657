/**
 * Charges of a meter for any window, rated at the moment of the request from the readings committed
 * then (contract section 3, GET /v1/meters/{id}/charges). The rating itself is the pure core in rating/;
 * this service only loads its inputs: the meter, its tariff timeline and its intervals in the window (one
 * round trip, ./charges.repository.ts), the tariff documents from the tariffs repository's cache of
 * immutable versions (so the rating core compiles a tariff once per process), and, for a tariff with a
 * demand ratchet or a metering mode that carries across billing windows, what is carried into the window
 * (./rating-history.ts: peaks of the preceding cycles, the state since the last true-up).
 */
import { isoUtc } from '../../common/time.js';
import type { Charges, MeterInterval } from '../../rating/index.js';
import { NoTariffAssigned, NotFound } from '../domain-errors.js';
import { decodePackedIntervalsBase64 } from '../readings/packed-intervals.js';
import type { TariffsRepository } from '../tariffs/tariffs.repository.js';
import type { ChargesRepository } from './charges.repository.js';
import { needsHistory, rateWindowWithHistory } from './rating-history.js';

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
    // A ratchet or a carrying metering mode needs the account's cycles and the readings before the window
    // (./rating-history.ts); any other tariff is rated from this one statement's answer.
    const account = needsHistory(tariffTimeline, { from, to }) ? await this.repo.accountCycle(inputs.accountId, meterId) : null;
    const charges = await rateWindowWithHistory(
      this.repo,
      { meterId, intervalSeconds: inputs.intervalSeconds, timezone: account?.timezone ?? 'UTC', billingDay: account?.billingDay ?? 1, tariffTimeline, serviceStart: account?.serviceStart ?? null },
      { window: { from, to }, billingCycle: opts.billingCycle, intervals },
    );
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
}
