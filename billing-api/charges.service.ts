/**
 * Charges of a meter for any window, rated at the moment of the request from the readings committed
 * then (contract section 3, GET /v1/meters/{id}/charges). The rating itself is the pure core in rating/;
 * this service only loads its inputs: the meter, its tariff timeline and its intervals in the window.
 *
 * One round trip per request (measured, see README Performance): a single prepared statement returns the
 * meter (account, interval length), its tariff assignments with the version numbers of each assigned
 * tariff, and the window's intervals packed by PostgreSQL into one base64 value of fixed 29-byte records,
 * instead of one protocol row (and five parsed strings) per interval. The tariff documents themselves
 * come from the repository's cache of immutable (id, version) documents, so the rating core compiles a
 * tariff once per process instead of validating and compiling it on every request.
 */
import type { Pool } from '../common/db.js';
import {
  peakDemandKw,
  rateWindow,
  RatingError,
  resolveTariffTimeline,
  type Charges,
  type DemandHistoryEntry,
  type MeterInterval,
  type TariffAssignment,
  type TariffDocument,
  type TariffTimelineEntry,
} from '../rating/index.js';
import { cycleContaining } from './billing/cycles.js';
import { ApiError, notFound } from './errors.js';
import type { TariffsRepository } from './tariffs.repository.js';

/** UTC with Z, without a zero millisecond part (as the rating core writes instants). */
const isoUtc = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

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

/** interval start (timestamptz_send: int64 microseconds since 2000-01-01), interval seconds (int4), import, export (int8), quality (1 byte) */
const RECORD_BYTES = 29;
/** 2000-01-01T00:00:00Z, PostgreSQL's timestamp epoch, in Unix microseconds */
const PG_EPOCH_MICROS = 946_684_800_000_000;
const TWO_32 = 4_294_967_296;
/** high words at or above this give int64 values of 2^53 or more, which are decoded as bigint */
const SAFE_HIGH_WORD = 0x20_0000;

// A named (prepared) statement: planning over the hypertable's chunks costs as much as running it.
const CHARGES_INPUTS_SQL = `
SELECT m.account_id, m.interval_seconds,
       (SELECT json_agg(json_build_array(
                 mt.tariff_id,
                 CASE WHEN mt.effective_from = '-infinity' THEN NULL ELSE (extract(epoch FROM mt.effective_from) * 1000)::float8 END,
                 ARRAY(SELECT t.version FROM tariffs t WHERE t.id = mt.tariff_id ORDER BY t.version)) ORDER BY mt.effective_from)
        FROM meter_tariffs mt WHERE mt.meter_id = m.id) AS tariffs,
       (SELECT encode(string_agg(timestamptz_send(r.interval_start) || int4send(r.interval_seconds) || int8send(r.import_mwh) || int8send(r.export_mwh)
                                 || CASE WHEN r.quality = 'actual' THEN '\\x01'::bytea ELSE '\\x00'::bytea END, ''::bytea), 'base64')
        FROM readings r
        WHERE r.meter_id = $1 AND r.interval_start >= to_timestamp($2::float8 / 1000) AND r.interval_start < to_timestamp($3::float8 / 1000)
          AND ($4::text IS NULL OR m.account_id = $4)) AS d
FROM meters m WHERE m.id = $1`;

interface ChargesInputsRow {
  account_id: string;
  interval_seconds: number;
  /** [tariffId, effectiveFrom ms or null for -infinity, versions of that tariff][] in effective order */
  tariffs: [string, number | null, number[]][] | null;
  d: string | null;
}

export class ChargesService {
  constructor(private readonly pool: Pool, private readonly tariffs: TariffsRepository) {}

  /** The stored intervals of a meter with intervalStart in [from, to), sorted by start. */
  async intervals(meterId: string, from: number, to: number): Promise<MeterInterval[]> {
    const row = await this.inputs(meterId, from, to, null);
    return row?.d ? decodeIntervals(Buffer.from(row.d, 'base64')) : [];
  }

  async forMeter(meterId: string, from: number, to: number, opts: ForMeterOptions = {}): Promise<MeterCharges> {
    const row = await this.inputs(meterId, from, to, opts.scopeAccountId ?? null);
    if (!row) throw notFound(`meter "${meterId}"`);
    opts.authorize?.(row.account_id);
    if (opts.scopeAccountId != null && row.account_id !== opts.scopeAccountId) throw notFound(`meter "${meterId}"`);
    if (!row.tariffs?.length) throw new ApiError(409, 'no_tariff', `meter "${meterId}" has no tariff assigned (PUT /v1/meters/${meterId}/tariff)`);
    const assignments: TariffAssignment[] = row.tariffs.map(([tariffId, fromMs]) => ({
      tariffId,
      effectiveFrom: fromMs === null ? Number.NEGATIVE_INFINITY : Number(fromMs),
    }));
    const versions = new Map<string, number[]>();
    for (const [tariffId, , numbers] of row.tariffs) versions.set(tariffId, numbers);
    const documents = await this.tariffs.versionDocuments([...versions].flatMap(([id, numbers]) => numbers.map((version) => ({ id, version }))));
    const intervals = row.d ? decodeIntervals(Buffer.from(row.d, 'base64')) : [];
    let charges: Charges;
    try {
      const tariffTimeline = resolveTariffTimeline(assignments, documents);
      const ratchet = ratchetTariff(tariffTimeline, from, to);
      const demandHistory = ratchet ? await this.demandHistory(meterId, row.account_id, row.interval_seconds, from, ratchet) : undefined;
      charges = rateWindow({
        tariffTimeline,
        intervals,
        billingWindow: { from, to },
        meterIntervalSeconds: row.interval_seconds,
        billingCycle: opts.billingCycle,
        ...(demandHistory ? { demandHistory } : {}),
      });
    } catch (err) {
      if (err instanceof RatingError) {
        const status = err.code === 'no_tariff_in_effect' || err.code === 'net_metering_not_rated' ? 409 : 400;
        throw new ApiError(status, err.code, err.message, err.details.map((message) => ({ message })));
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

  /**
   * The peak demand of each of the billing cycles (the account's) preceding the one that holds `from`, as
   * far back as the ratchet looks, from the stored readings and measured as the tariff measures demand.
   * A cycle without readings has a peak of 0.
   */
  private async demandHistory(meterId: string, accountId: string, intervalSeconds: number, from: number, tariff: TariffDocument): Promise<DemandHistoryEntry[]> {
    const account = await this.pool.query<{ timezone: string; billing_day: number }>({
      name: 'charges-account-cycle',
      text: 'SELECT timezone, billing_day FROM accounts WHERE id = $1',
      values: [accountId],
    });
    if (!account.rowCount) return [];
    const { timezone, billing_day: billingDay } = account.rows[0];
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

  private async inputs(meterId: string, from: number, to: number, scopeAccountId: string | null): Promise<ChargesInputsRow | null> {
    const res = await this.pool.query<ChargesInputsRow>({ name: 'charges-inputs', text: CHARGES_INPUTS_SQL, values: [meterId, from, to, scopeAccountId] });
    return res.rowCount ? res.rows[0] : null;
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

/** Decodes the packed records (see CHARGES_INPUTS_SQL) into rating intervals, sorted by start. Exported for tests. */
export function decodeIntervals(d: Buffer): MeterInterval[] {
  const n = Math.floor(d.length / RECORD_BYTES);
  const view = new DataView(d.buffer, d.byteOffset, d.byteLength);
  const intervals = new Array<MeterInterval>(n);
  let sorted = true;
  let previous = Number.NEGATIVE_INFINITY;
  for (let k = 0, o = 0; k < n; k++, o += RECORD_BYTES) {
    // Unix microseconds, rounded to milliseconds half away from zero, as (extract(epoch) * 1000)::bigint does.
    const unixMs = (Number(int64At(view, o)) + PG_EPOCH_MICROS) / 1000;
    const intervalStart = unixMs < 0 ? 0 - Math.round(-unixMs) : Math.round(unixMs);
    intervals[k] = {
      intervalStart,
      intervalSeconds: view.getInt32(o + 8),
      importMwh: int64At(view, o + 12),
      exportMwh: int64At(view, o + 20),
      quality: view.getUint8(o + 28) === 1 ? 'actual' : 'estimated',
    };
    if (intervalStart < previous) sorted = false;
    previous = intervalStart;
  }
  if (!sorted) intervals.sort((a, b) => a.intervalStart - b.intervalStart);
  return intervals;
}

/** A big-endian int64: a number when it is a safe integer (|v| < 2^53), a bigint otherwise. Exact either way. */
function int64At(view: DataView, o: number): number | bigint {
  const high = view.getInt32(o);
  if (high >= SAFE_HIGH_WORD || high < -SAFE_HIGH_WORD) return view.getBigInt64(o);
  return high * TWO_32 + view.getUint32(o + 4);
}
