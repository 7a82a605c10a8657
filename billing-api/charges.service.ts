/**
 * Charges of a meter for any window, rated at the moment of the request from the readings committed
 * then (contract section 3, GET /v1/meters/{id}/charges). The rating itself is the pure core in rating/;
 * this service only loads its inputs: the meter, its tariff timeline and its intervals in the window.
 */
import type { Pool } from '../common/db.js';
import { rateWindow, RatingError, resolveTariffTimeline, type Charges, type MeterInterval } from '../rating/index.js';
import { ApiError, notFound } from './errors.js';

/** UTC with Z, without a zero millisecond part (as the rating core writes instants). */
const isoUtc = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');
import type { TariffsRepository } from './tariffs.repository.js';

export interface MeterCharges extends Omit<Charges, 'tariffIds'> {
  meterId: string;
  from: string;
  to: string;
  /** the tariff in effect at the end of the window (the contract's single id) */
  tariffId: string;
  /** every tariff that rated a part of the window, in time order */
  tariffIds: string[];
}

export class ChargesService {
  constructor(private readonly pool: Pool, private readonly tariffs: TariffsRepository) {}

  async intervals(meterId: string, from: number, to: number): Promise<MeterInterval[]> {
    // Epoch milliseconds straight from SQL: no Date objects for thousands of rows. A named (prepared)
    // statement: planning over the hypertable's chunks costs as much as running it (measured: 13.8 -> 6.6 ms).
    const res = await this.pool.query({
      name: 'charges-intervals',
      text: `SELECT (extract(epoch FROM interval_start) * 1000)::bigint AS s, interval_seconds AS n, import_mwh AS i, export_mwh AS e, quality AS q
             FROM readings WHERE meter_id = $1 AND interval_start >= to_timestamp($2::float8 / 1000) AND interval_start < to_timestamp($3::float8 / 1000)
             ORDER BY interval_start`,
      values: [meterId, from, to],
      rowMode: 'array',
    });
    return (res.rows as [string, number, string, string, 'actual' | 'estimated'][]).map((r) => ({
      intervalStart: Number(r[0]),
      intervalSeconds: r[1],
      importMwh: r[2],
      exportMwh: r[3],
      quality: r[4],
    }));
  }

  async forMeter(meterId: string, from: number, to: number, billingCycle?: { from: number; to: number }): Promise<MeterCharges> {
    // Independent loads in parallel (each on its own pooled connection); the documents depend on the assignments.
    const [meter, assignments, intervals] = await Promise.all([
      this.pool.query({ name: 'charges-meter', text: 'SELECT interval_seconds FROM meters WHERE id = $1', values: [meterId] }),
      this.tariffs.assignments(meterId),
      this.intervals(meterId, from, to),
    ]);
    if (!meter.rowCount) throw notFound(`meter "${meterId}"`);
    if (!assignments.length) throw new ApiError(409, 'no_tariff', `meter "${meterId}" has no tariff assigned (PUT /v1/meters/${meterId}/tariff)`);
    const documents = await this.tariffs.documents([...new Set(assignments.map((a) => a.tariffId))]);
    let charges: Charges;
    try {
      charges = rateWindow({
        tariffTimeline: resolveTariffTimeline(assignments, documents),
        intervals,
        billingWindow: { from, to },
        meterIntervalSeconds: meter.rows[0].interval_seconds,
        billingCycle,
      });
    } catch (err) {
      if (err instanceof RatingError) {
        throw new ApiError(err.code === 'no_tariff_in_effect' ? 409 : 400, err.code, err.message, err.details.map((message) => ({ message })));
      }
      throw err;
    }
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
