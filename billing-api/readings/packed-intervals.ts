/**
 * The packed-interval codec: a window of stored readings travels from PostgreSQL as one bytea of fixed
 * 25-byte records, sent as base64 and decoded here, instead of one protocol row (and five parsed strings)
 * per interval. A billing run reads millions of intervals; this is where it would otherwise spend its time.
 * (The binary result format would save the base64, but node-postgres decodes every field as UTF-8 text.)
 *
 * Record, big-endian, as PostgreSQL's send functions write it:
 *   0  int64  interval start (timestamptz_send: microseconds since 2000-01-01T00:00:00Z)
 *   8  int64  import, mWh (int8send)
 *  16  int64  export, mWh (int8send)
 *  24  uint8  flags: bit 0 quality (1 actual, 0 estimated); bit 1 a reactive import follows, bit 2 a
 *               reactive export follows (readings that carry reactive energy, migrations/035)
 *  25  int64  reactive import, mvarh (int8send), when bit 1 is set
 *  ..  int64  reactive export, mvarh, when bit 2 is set
 * A record without reactive energy is 25 bytes, as before; one with it 33 or 41. A missing reactive value
 * is left absent on the interval (not measured), never read as 0.
 * The interval length is the meter's (ingestion quarantines a reading whose length differs), so it is not
 * sent. Decoding is exact: instants are rounded to the millisecond half away from zero, as
 * `(extract(epoch FROM t) * 1000)::bigint` does, and an int64 outside the safe integers (either sign)
 * becomes a bigint.
 */
import type { MeterInterval } from '../../rating/index.js';

export const PACKED_INTERVAL_BYTES = 25;

/**
 * SQL: the packed records of the readings aliased `alias`, in the order of the aggregate, as base64 (NULL
 * when there are none). Use inside a subquery over `readings`.
 */
export function packedIntervalsSql(alias: string): string {
  return `encode(string_agg(timestamptz_send(${alias}.interval_start) || int8send(${alias}.import_mwh) || int8send(${alias}.export_mwh)
                                 || CASE WHEN ${alias}.reactive_import_mvarh IS NULL AND ${alias}.reactive_export_mvarh IS NULL
                                         THEN CASE WHEN ${alias}.quality = 'actual' THEN '\\x01'::bytea ELSE '\\x00'::bytea END
                                         ELSE set_byte('\\x00'::bytea, 0, CASE WHEN ${alias}.quality = 'actual' THEN 1 ELSE 0 END
                                                | CASE WHEN ${alias}.reactive_import_mvarh IS NULL THEN 0 ELSE 2 END
                                                | CASE WHEN ${alias}.reactive_export_mvarh IS NULL THEN 0 ELSE 4 END)
                                              || COALESCE(int8send(${alias}.reactive_import_mvarh), ''::bytea) || COALESCE(int8send(${alias}.reactive_export_mvarh), ''::bytea) END, ''::bytea), 'base64')`;
}

/** 2000-01-01T00:00:00Z, PostgreSQL's timestamp epoch, in Unix microseconds and milliseconds */
const PG_EPOCH_MICROS = 946_684_800_000_000;
const PG_EPOCH_MS = 946_684_800_000;
const TWO_32 = 4_294_967_296;
/** high words at or beyond +-this give int64 values of magnitude 2^53 or more: decoded as bigint (exact) */
const SAFE_HIGH_WORD = 0x20_0000;

/** The records of `packed` as rating intervals of `intervalSeconds`, sorted by start (a new array every call). */
export function decodePackedIntervals(packed: Buffer, intervalSeconds: number): MeterInterval[] {
  const n = countPackedIntervals(packed);
  const view = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
  const intervals = new Array<MeterInterval>(n);
  let sorted = true;
  let previous = Number.NEGATIVE_INFINITY;
  for (let k = 0, o = 0; k < n; k++, o += PACKED_INTERVAL_BYTES) {
    const intervalStart = unixMillisAt(view, o);
    const flags = view.getUint8(o + 24);
    const interval: MeterInterval = {
      intervalStart,
      intervalSeconds,
      importMwh: int64At(view, o + 8),
      exportMwh: int64At(view, o + 16),
      quality: (flags & 1) === 1 ? 'actual' : 'estimated',
    };
    if (flags & 2) {
      interval.reactiveImportMvarh = int64At(view, o + PACKED_INTERVAL_BYTES);
      o += 8;
    }
    if (flags & 4) {
      interval.reactiveExportMvarh = int64At(view, o + PACKED_INTERVAL_BYTES);
      o += 8;
    }
    intervals[k] = interval;
    if (intervalStart < previous) sorted = false;
    previous = intervalStart;
  }
  if (!sorted) intervals.sort((a, b) => a.intervalStart - b.intervalStart);
  return intervals;
}

/** How many records `packed` holds; throws RangeError when it is not a sequence of whole records. */
export function countPackedIntervals(packed: Buffer): number {
  let n = 0;
  let o = 0;
  while (o + PACKED_INTERVAL_BYTES <= packed.length) {
    const flags = packed[o + 24];
    o += PACKED_INTERVAL_BYTES + (flags & 2 ? 8 : 0) + (flags & 4 ? 8 : 0);
    n++;
  }
  if (o !== packed.length) {
    throw new RangeError(`packed intervals: ${packed.length} bytes is not a whole number of ${PACKED_INTERVAL_BYTES}-byte records (each with its reactive energy)`);
  }
  return n;
}

/** Decodes the base64 text PostgreSQL sent (line breaks included, which Buffer.from skips); null: no records. */
export function decodePackedIntervalsBase64(base64: string | null | undefined, intervalSeconds: number): MeterInterval[] {
  return base64 ? decodePackedIntervals(Buffer.from(base64, 'base64'), intervalSeconds) : [];
}

/**
 * Packs intervals as PostgreSQL would (the inverse of decodePackedIntervals), for tests and tools.
 * Instants must be whole milliseconds; energies integers of mWh.
 */
export function encodePackedIntervals(
  intervals: Pick<MeterInterval, 'intervalStart' | 'importMwh' | 'exportMwh' | 'quality' | 'reactiveImportMvarh' | 'reactiveExportMvarh'>[],
): Buffer {
  const size = (i: (typeof intervals)[number]) => PACKED_INTERVAL_BYTES + (i.reactiveImportMvarh != null ? 8 : 0) + (i.reactiveExportMvarh != null ? 8 : 0);
  const packed = Buffer.alloc(intervals.reduce((total, i) => total + size(i), 0));
  let o = 0;
  intervals.forEach((interval) => {
    packed.writeBigInt64BE(BigInt(interval.intervalStart) * 1000n - BigInt(PG_EPOCH_MICROS), o);
    packed.writeBigInt64BE(BigInt(interval.importMwh), o + 8);
    packed.writeBigInt64BE(BigInt(interval.exportMwh), o + 16);
    const reactiveImport = interval.reactiveImportMvarh ?? null;
    const reactiveExport = interval.reactiveExportMvarh ?? null;
    packed.writeUInt8((interval.quality === 'actual' ? 1 : 0) | (reactiveImport !== null ? 2 : 0) | (reactiveExport !== null ? 4 : 0), o + 24);
    o += PACKED_INTERVAL_BYTES;
    for (const value of [reactiveImport, reactiveExport]) {
      if (value === null) continue;
      packed.writeBigInt64BE(BigInt(value), o);
      o += 8;
    }
  });
  return packed;
}

/** Unix milliseconds of a timestamptz_send value, rounded half away from zero. */
function unixMillisAt(view: DataView, o: number): number {
  const high = view.getInt32(o);
  if (high < SAFE_HIGH_WORD && high >= -SAFE_HIGH_WORD) {
    // Every stored instant is a whole millisecond: exact integer arithmetic, no rounding needed.
    const pgMs = (high * TWO_32 + view.getUint32(o + 4)) / 1000;
    if (Number.isInteger(pgMs)) return pgMs + PG_EPOCH_MS;
  }
  const unixMs = (Number(int64At(view, o)) + PG_EPOCH_MICROS) / 1000;
  return unixMs < 0 ? 0 - Math.round(-unixMs) : Math.round(unixMs);
}

/** A big-endian int64: a number when it is a safe integer (|v| < 2^53), a bigint otherwise. Exact either way. */
function int64At(view: DataView, o: number): number | bigint {
  const high = view.getInt32(o);
  if (high >= SAFE_HIGH_WORD || high < -SAFE_HIGH_WORD) return view.getBigInt64(o);
  return high * TWO_32 + view.getUint32(o + 4);
}
