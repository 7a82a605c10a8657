/**
 * Stored readings and quarantined input as the back office and customers read them: a meter's intervals
 * in a window, and the quarantine. The meter is looked up first, so an unknown meter is NotFound.
 */
import { NotFound } from '../domain-errors.js';
import type { MeterRow } from '../provisioning/provisioning.repository.js';
import type { ReadingsRepository, StoredReading } from './readings.repository.js';

/** How readings finds a meter (the provisioning repository). */
export interface MeterLookup {
  getMeter(id: string): Promise<MeterRow | null>;
}

export type QuarantineFilter = Parameters<ReadingsRepository['listQuarantine']>[0];

export class ReadingsService {
  constructor(
    private readonly readings: ReadingsRepository,
    private readonly meters: MeterLookup,
  ) {}

  /** The meter whose data is asked for; NotFound when it does not exist. */
  async meter(id: string): Promise<MeterRow> {
    const meter = await this.meters.getMeter(id);
    if (!meter) throw new NotFound(`meter "${id}"`);
    return meter;
  }

  /** Half-open window [from, to) on intervalStart, ordered by intervalStart, after the paging cursor. */
  list(meterId: string, from: number | null, to: number | null, after: number | null, limit: number): Promise<StoredReading[]> {
    return this.readings.list(meterId, from, to, after, limit);
  }

  quarantine(filter: QuarantineFilter) {
    return this.readings.listQuarantine(filter);
  }
}
