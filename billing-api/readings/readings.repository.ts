/**
 * Reads of stored interval data and of the quarantine: pages for the back office and customers, and bulk
 * loads of many (meter, window) pairs in one round trip for rating (billing runs, running charges,
 * consumption), packed by PostgreSQL (./packed-intervals.ts). The same SQL serves the hypertable and the
 * plain table (both are read through the (meter_id, interval_start) primary key).
 */
import type { Pool } from '../../common/db.js';
import { mwhToWhString } from '../../common/reading.js';
import type { MeterInterval } from '../../rating/index.js';
import type { Queryable } from '../queryable.js';
import { countPackedIntervals, decodePackedIntervals, packedIntervalsSql } from './packed-intervals.js';

export interface StoredReading {
  intervalStart: string;
  intervalSeconds: number;
  importWh: string;
  exportWh: string;
  quality: 'actual' | 'estimated';
  receivedAt: string;
  /** exact decimal strings of varh; absent when the meter did not measure them */
  reactiveImportVarh?: string;
  reactiveExportVarh?: string;
}

export interface MeterWindow {
  meterId: string;
  /** [from, to) on intervalStart, epoch ms */
  from: number;
  to: number;
  intervalSeconds: number;
}

// One scalar subquery per window (no join and GROUP BY over all the rows: measured 22% less database time
// for a batch of 100 meter-months); a window without rows gives NULL.
const WINDOWS_SQL = (actualOnly: boolean) => `
SELECT (SELECT ${packedIntervalsSql('r')}
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
    return this.data ? countPackedIntervals(this.data) : 0;
  }

  /** The intervals, sorted by start (a new array of new objects on every call). */
  decode(): MeterInterval[] {
    return this.data ? decodePackedIntervals(this.data, this.intervalSeconds) : [];
  }
}

export class ReadingsRepository {
  constructor(private readonly pool: Pool) {}

  /** The stored intervals of each window, packed (see PackedIntervals), in the order of `windows`. */
  async packedWindows(windows: MeterWindow[], opts: { actualOnly?: boolean } = {}, q: Queryable = this.pool): Promise<PackedIntervals[]> {
    if (!windows.length) return [];
    const actualOnly = opts.actualOnly ?? false;
    const res = await q.query<{ d: string | null }>({
      name: actualOnly ? 'intervals-actual' : 'intervals',
      text: WINDOWS_SQL(actualOnly),
      values: [windows.map((w) => w.meterId), windows.map((w) => new Date(w.from).toISOString()), windows.map((w) => new Date(w.to).toISOString())],
    });
    // base64 with PostgreSQL's line breaks, which Buffer.from skips.
    return windows.map((w, k) => {
      const d = res.rows[k]?.d;
      return new PackedIntervals(d ? Buffer.from(d, 'base64') : null, w.intervalSeconds);
    });
  }

  /** The stored intervals of each window (sorted by start), in the order of `windows`. */
  async windows(windows: MeterWindow[], opts: { actualOnly?: boolean } = {}, q: Queryable = this.pool): Promise<MeterInterval[][]> {
    return (await this.packedWindows(windows, opts, q)).map((p) => p.decode());
  }

  /** Half-open window [from, to) on intervalStart, ordered by intervalStart, after the paging cursor. */
  async list(meterId: string, from: number | null, to: number | null, after: number | null, limit: number): Promise<StoredReading[]> {
    const res = await this.pool.query(
      `SELECT interval_start, interval_seconds, import_mwh, export_mwh, quality, received_at, reactive_import_mvarh, reactive_export_mvarh
       FROM readings
       WHERE meter_key = (SELECT key FROM meters WHERE id = $1)
         AND interval_start >= COALESCE(to_timestamp($2::double precision / 1000), '-infinity')
         AND interval_start <  COALESCE(to_timestamp($3::double precision / 1000), 'infinity')
         AND interval_start >  COALESCE(to_timestamp($4::double precision / 1000), '-infinity')
       ORDER BY interval_start
       LIMIT $5`,
      [meterId, from, to, after, limit],
    );
    return res.rows.map((r) => ({
      intervalStart: r.interval_start.toISOString(),
      intervalSeconds: r.interval_seconds,
      importWh: mwhToWhString(r.import_mwh),
      exportWh: mwhToWhString(r.export_mwh),
      quality: r.quality,
      receivedAt: r.received_at.toISOString(),
      ...(r.reactive_import_mvarh !== null ? { reactiveImportVarh: mwhToWhString(r.reactive_import_mvarh) } : {}),
      ...(r.reactive_export_mvarh !== null ? { reactiveExportVarh: mwhToWhString(r.reactive_export_mvarh) } : {}),
    }));
  }

  async listQuarantine(filter: { deviceId?: string; reason?: string; from: number | null; to: number | null; after: number | null; limit: number }) {
    const res = await this.pool.query(
      `SELECT id, received_at, device_id, topic, reason, detail, meter_id, interval_start, raw, raw_size, raw_sha256, raw_truncated
       FROM quarantine
       WHERE ($1::text IS NULL OR device_id = $1) AND ($2::text IS NULL OR reason = $2)
         AND received_at >= COALESCE(to_timestamp($3::double precision / 1000), '-infinity')
         AND received_at <  COALESCE(to_timestamp($4::double precision / 1000), 'infinity')
         AND id > COALESCE($5::bigint, 0)
       ORDER BY id
       LIMIT $6`,
      [filter.deviceId ?? null, filter.reason ?? null, filter.from, filter.to, filter.after, filter.limit],
    );
    const decoder = new TextDecoder('utf-8', { fatal: true });
    return res.rows.map((r) => {
      let raw: string | null = null;
      try {
        raw = decoder.decode(r.raw);
      } catch {
        raw = null;
      }
      return {
        id: Number(r.id),
        receivedAt: r.received_at.toISOString(),
        deviceId: r.device_id,
        topic: r.topic,
        reason: r.reason,
        detail: r.detail,
        meterId: r.meter_id,
        intervalStart: r.interval_start ? r.interval_start.toISOString() : null,
        raw,
        rawBase64: raw === null ? Buffer.from(r.raw).toString('base64') : null,
        rawSize: r.raw_size,
        rawSha256: Buffer.from(r.raw_sha256).toString('hex'),
        rawTruncated: r.raw_truncated,
      };
    });
  }
}
