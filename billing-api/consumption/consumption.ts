/**
 * Consumption of a meter per bucket (GET /v1/meters/{id}/consumption): import and export kWh as exact
 * decimal strings, interval counts, and kWh per time-of-use period of the tariff in effect.
 *
 * Buckets are local-time units in the requested zone (default: the meter's): `interval` (the meter's own
 * intervals), `hour` (local wall-clock hours: the repeated hour of a fall-back day is two buckets with the
 * same local label and different offsets; the skipped hour has none), `day` (local midnight to midnight:
 * 23, 24 or 25 hours) and `month`. The buckets tile [from, to): the first and last are cut at `from` and
 * `to` when those fall inside a unit. An interval belongs to the bucket holding its intervalStart.
 * Every bucket of the grid is listed, empty ones too (their interval counts show the gap).
 */
import { DateTime, IANAZone } from 'luxon';
import { mwhToKwhString } from '../../common/reading.js';
import { isoUtc } from '../../common/time.js';
import { classifyInterval, type MeterInterval, type TariffTimelineEntry } from '../../rating/index.js';

export const GROUP_BY = ['interval', 'hour', 'day', 'month'] as const;
export type GroupBy = (typeof GROUP_BY)[number];

export interface Bucket {
  from: number;
  to: number;
}

export interface ConsumptionBucket {
  /** ISO 8601 UTC */
  from: string;
  to: string;
  /** the bucket's start as local time with its offset in the requested zone */
  localFrom: string;
  importKwh: string;
  exportKwh: string;
  intervals: { expected: number; actual: number; estimated: number };
  /** kWh per energy period of the tariff in effect (omitted when the meter has no tariff) */
  periods?: { tariffId: string; period: string; importKwh: string; exportKwh: string }[];
}

/**
 * The first `limit` buckets of [from, to). `more` tells whether the grid continues after them (the next
 * page then starts at the last bucket's `to`).
 */
export function bucketGrid(from: number, to: number, groupBy: GroupBy, zone: string, meterIntervalSeconds: number, limit: number): { buckets: Bucket[]; more: boolean } {
  const boundaries = boundariesAfter(from, groupBy, zone, meterIntervalSeconds);
  const buckets: Bucket[] = [];
  let start = from;
  for (const boundary of boundaries) {
    if (start >= to || buckets.length === limit) break;
    if (boundary <= start) continue;
    const end = Math.min(boundary, to);
    buckets.push({ from: start, to: end });
    start = end;
  }
  return { buckets, more: start < to };
}

/** Unit boundaries strictly after `from`, in order (an endless generator). */
function* boundariesAfter(from: number, groupBy: GroupBy, zone: string, meterIntervalSeconds: number): Generator<number> {
  const z = IANAZone.create(zone);
  if (groupBy === 'interval') {
    const len = meterIntervalSeconds * 1000;
    // Aligned in local time: start + offset is a multiple of the interval length.
    const offset = z.offset(from) * 60_000;
    let b = from - ((((from + offset) % len) + len) % len) + len;
    for (;;) {
      yield b;
      b += len;
    }
  }
  if (groupBy === 'hour') {
    // Every zone's offset is a multiple of 15 minutes: a local hour starts at some UTC quarter hour.
    const quarter = 15 * 60_000;
    for (let b = Math.floor(from / quarter) * quarter + quarter; ; b += quarter) {
      if ((((b + z.offset(b) * 60_000) % 3_600_000) + 3_600_000) % 3_600_000 === 0) yield b;
    }
  }
  const unit = groupBy === 'day' ? 'day' : 'month';
  let local = DateTime.fromMillis(from, { zone: z }).startOf(unit);
  for (;;) {
    local = local.plus(unit === 'day' ? { days: 1 } : { months: 1 }).startOf(unit);
    yield local.toMillis();
  }
}

/** Sums the intervals (sorted by start) into the buckets (sorted, contiguous). */
export function consumptionOf(
  buckets: Bucket[],
  intervals: MeterInterval[],
  opts: { zone: string; meterIntervalSeconds: number; meterZone: string; timeline: TariffTimelineEntry[] | null },
): ConsumptionBucket[] {
  const len = opts.meterIntervalSeconds * 1000;
  const meterZone = IANAZone.create(opts.meterZone);
  const timeline = opts.timeline ? [...opts.timeline].sort((a, b) => a.from - b.from) : null;
  let k = 0;
  return buckets.map((bucket) => {
    let importMwh = 0n;
    let exportMwh = 0n;
    let actual = 0;
    let estimated = 0;
    const periods = new Map<string, { tariffId: string; period: string; importMwh: bigint; exportMwh: bigint }>();
    while (k < intervals.length && intervals[k].intervalStart < bucket.from) k++;
    for (; k < intervals.length && intervals[k].intervalStart < bucket.to; k++) {
      const r = intervals[k];
      const i = BigInt(r.importMwh);
      const e = BigInt(r.exportMwh);
      importMwh += i;
      exportMwh += e;
      if (r.quality === 'actual') actual++;
      else estimated++;
      const tariff = timeline ? entryAt(timeline, r.intervalStart) : null;
      const period = tariff ? classifyInterval(tariff.tariff, r.intervalStart).period : null;
      if (tariff && period !== null) {
        const key = `${tariff.tariff.id}\u0000${period}`;
        const sum = periods.get(key) ?? { tariffId: tariff.tariff.id, period, importMwh: 0n, exportMwh: 0n };
        sum.importMwh += i;
        sum.exportMwh += e;
        periods.set(key, sum);
      }
    }
    return {
      from: isoUtc(bucket.from),
      to: isoUtc(bucket.to),
      localFrom: DateTime.fromMillis(bucket.from, { zone: opts.zone }).toISO({ suppressMilliseconds: true })!,
      importKwh: mwhToKwhString(importMwh),
      exportKwh: mwhToKwhString(exportMwh),
      intervals: { expected: expectedIntervals(bucket, len, meterZone), actual, estimated },
      ...(timeline
        ? {
            periods: [...periods.values()].map((p) => ({
              tariffId: p.tariffId,
              period: p.period,
              importKwh: mwhToKwhString(p.importMwh),
              exportKwh: mwhToKwhString(p.exportMwh),
            })),
          }
        : {}),
    };
  });
}

/** Meter intervals whose start lies in the bucket (starts aligned to the interval in the meter's zone). */
function expectedIntervals(bucket: Bucket, len: number, meterZone: IANAZone): number {
  const phase = ((-meterZone.offset(bucket.from) * 60_000) % len + len) % len;
  const ceilTo = (t: number) => Math.ceil((t - phase) / len);
  return ceilTo(bucket.to) - ceilTo(bucket.from);
}

function entryAt(timeline: TariffTimelineEntry[], instant: number): TariffTimelineEntry | null {
  for (let i = timeline.length - 1; i >= 0; i--) {
    const entry = timeline[i];
    if (entry.from <= instant) return (entry.to ?? Number.POSITIVE_INFINITY) > instant ? entry : null;
  }
  return null;
}
