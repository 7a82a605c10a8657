/** Loads a page of a meter's consumption: the bucket grid, the intervals under it, the tariff timeline. */
import { NotFound } from '../domain-errors.js';
import type { MeterRow } from '../provisioning/provisioning.repository.js';
import type { ReadingsRepository } from '../readings/readings.repository.js';
import type { MeterLookup } from '../readings/readings.service.js';
import type { TariffsRepository } from '../tariffs/tariffs.repository.js';
import { bucketGrid, consumptionOf, type ConsumptionBucket, type GroupBy } from './consumption.js';

export interface ConsumptionPage {
  items: ConsumptionBucket[];
  /** where the next page starts (a bucket boundary), or null when this page reaches `to` */
  nextFrom: number | null;
}

export class ConsumptionService {
  constructor(
    private readonly readings: ReadingsRepository,
    private readonly tariffs: TariffsRepository,
    private readonly meters: MeterLookup,
  ) {}

  /** The meter whose consumption is asked for; NotFound when it does not exist. */
  async meter(id: string): Promise<MeterRow> {
    const meter = await this.meters.getMeter(id);
    if (!meter) throw new NotFound(`meter "${id}"`);
    return meter;
  }

  async page(
    meter: { id: string; timezone: string; intervalSeconds: number },
    query: { from: number; to: number; groupBy: GroupBy; zone: string; limit: number },
  ): Promise<ConsumptionPage> {
    const { buckets, more } = bucketGrid(query.from, query.to, query.groupBy, query.zone, meter.intervalSeconds, query.limit);
    if (!buckets.length) return { items: [], nextFrom: null };
    const end = buckets[buckets.length - 1].to;
    const [[intervals], tariffs] = await Promise.all([
      this.readings.windows([{ meterId: meter.id, from: query.from, to: end, intervalSeconds: meter.intervalSeconds }]),
      this.tariffs.forMeters([meter.id]),
    ]);
    const meterTariffs = tariffs.get(meter.id)!;
    const items = consumptionOf(buckets, intervals, {
      zone: query.zone,
      meterZone: meter.timezone,
      meterIntervalSeconds: meter.intervalSeconds,
      timeline: meterTariffs.hasAssignment ? meterTariffs.timeline : null,
    });
    return { items, nextFrom: more ? end : null };
  }
}
