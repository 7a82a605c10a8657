/** Reads of stored interval data and of the quarantine, for the back office and customers. */
import type { Pool } from '../common/db.js';
import { mwhToWhString } from '../common/reading.js';

export interface StoredReading {
  intervalStart: string;
  intervalSeconds: number;
  importWh: string;
  exportWh: string;
  quality: 'actual' | 'estimated';
  receivedAt: string;
}

export class ReadingsRepository {
  constructor(private readonly pool: Pool) {}

  /** Half-open window [from, to) on intervalStart, ordered by intervalStart, after the paging cursor. */
  async list(meterId: string, from: number | null, to: number | null, after: number | null, limit: number): Promise<StoredReading[]> {
    const res = await this.pool.query(
      `SELECT interval_start, interval_seconds, import_mwh, export_mwh, quality, received_at
       FROM readings
       WHERE meter_id = $1
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
