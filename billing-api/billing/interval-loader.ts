/**
 * Bulk loads of interval readings: many (meter, window) pairs in one round trip, one result row per pair.
 * PostgreSQL packs each window's rows into one bytea of fixed 25-byte records (the interval start as
 * timestamptz_send gives it, import and export as int8send gives them, one quality byte), which travels as
 * base64 and is decoded natively: no per-row protocol overhead and no number formatting or parsing, which
 * is what a billing run reading millions of intervals would otherwise spend its time on. (The binary result
 * format would save the base64, but node-postgres decodes every field as UTF-8 text.) The same query serves the hypertable
 * and the plain table (both are read through the (meter_id, interval_start) primary key).
 */
import type { MeterInterval } from '../../rating/index.js';
import type { Queryable } from './tariff-catalog.js';

export interface MeterWindow {
  meterId: string;
  /** [from, to) on intervalStart, epoch ms */
  from: number;
  to: number;
  intervalSeconds: number;
}

const RECORD_BYTES = 25;
/** 2000-01-01T00:00:00Z, PostgreSQL's timestamp epoch, in Unix milliseconds */
const PG_EPOCH_MS = 946_684_800_000;
const TWO_32 = 4_294_967_296;
/** high words at or above this give int64 values of 2^53 or more, which are decoded as bigint (exact) */
const SAFE_HIGH_WORD = 0x20_0000;

// One scalar subquery per window (no join and GROUP BY over all the rows: measured 22% less database time
// for a batch of 100 meter-months); a window without rows gives NULL.
const SQL = (actualOnly: boolean) => `
SELECT (SELECT encode(string_agg(timestamptz_send(r.interval_start) || int8send(r.import_mwh) || int8send(r.export_mwh)
                                 || CASE WHEN r.quality = 'actual' THEN '\\x01'::bytea ELSE '\\x00'::bytea END, ''::bytea), 'base64')
        FROM readings r
        WHERE r.meter_id = u.meter_id AND r.interval_start >= u.f AND r.interval_start < u.t${actualOnly ? ` AND r.quality = 'actual'` : ''}) AS d
FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) WITH ORDINALITY AS u(meter_id, f, t, i)
ORDER BY u.i`;

/**
 * One window's intervals as loaded: the packed records, decoded on demand. A billing round keeps a hundred
 * meter-months in flight; holding them packed (one buffer each, outside the JavaScript heap) and decoding
 * each just before it is rated keeps the decoded objects short-lived instead of copying them from one young
 * generation to the next and promoting them (measured on a 1,000-account close: peak heap 350 -> 120 MB,
 * scavenge time 420 -> 380 ms).
 */
export class PackedIntervals {
  constructor(
    private readonly data: Buffer | null,
    readonly intervalSeconds: number,
  ) {}

  get length(): number {
    return this.data ? Math.floor(this.data.length / RECORD_BYTES) : 0;
  }

  /** The intervals, sorted by start (a new array of new objects on every call). */
  decode(): MeterInterval[] {
    return this.data ? decode(this.data, this.intervalSeconds) : [];
  }
}

/** The stored intervals of each window, packed (see PackedIntervals), in the order of `windows`. */
export async function loadPackedIntervals(q: Queryable, windows: MeterWindow[], opts: { actualOnly?: boolean } = {}): Promise<PackedIntervals[]> {
  if (!windows.length) return [];
  const actualOnly = opts.actualOnly ?? false;
  const res = await q.query<{ d: string | null }>({
    name: actualOnly ? 'intervals-actual' : 'intervals',
    text: SQL(actualOnly),
    values: [windows.map((w) => w.meterId), windows.map((w) => new Date(w.from).toISOString()), windows.map((w) => new Date(w.to).toISOString())],
  });
  // base64 with PostgreSQL's line breaks, which Buffer.from skips.
  return windows.map((w, k) => {
    const d = res.rows[k]?.d;
    return new PackedIntervals(d ? Buffer.from(d, 'base64') : null, w.intervalSeconds);
  });
}

/** The stored intervals of each window (sorted by start), in the order of `windows`. */
export async function loadIntervals(q: Queryable, windows: MeterWindow[], opts: { actualOnly?: boolean } = {}): Promise<MeterInterval[][]> {
  return (await loadPackedIntervals(q, windows, opts)).map((p) => p.decode());
}

function decode(d: Buffer, intervalSeconds: number): MeterInterval[] {
  const n = Math.floor(d.length / RECORD_BYTES);
  const view = new DataView(d.buffer, d.byteOffset, d.byteLength);
  const intervals = new Array<MeterInterval>(n);
  let sorted = true;
  let previous = Number.NEGATIVE_INFINITY;
  for (let k = 0, o = 0; k < n; k++, o += RECORD_BYTES) {
    // int64 big-endian values below 2^53: high word x 2^32 + low word, exactly.
    const micros = view.getInt32(o) * TWO_32 + view.getUint32(o + 4);
    const intervalStart = Math.round(micros / 1000) + PG_EPOCH_MS;
    intervals[k] = {
      intervalStart,
      intervalSeconds,
      importMwh: int64At(view, o + 8),
      exportMwh: int64At(view, o + 16),
      quality: view.getUint8(o + 24) === 1 ? 'actual' : 'estimated',
    };
    if (intervalStart < previous) sorted = false;
    previous = intervalStart;
  }
  if (!sorted) intervals.sort((a, b) => a.intervalStart - b.intervalStart);
  return intervals;
}

/** A big-endian int64 (energies are never negative): a number below 2^53, a bigint from there on. Exact either way. */
function int64At(view: DataView, o: number): number | bigint {
  const high = view.getInt32(o);
  if (high >= SAFE_HIGH_WORD || high < 0) return view.getBigInt64(o);
  return high * TWO_32 + view.getUint32(o + 4);
}
