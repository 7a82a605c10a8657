/**
 * storage: bytes on disk per meter-year of 15-minute readings (35,040 rows), for sizing. A year of data for
 * a sample of meters is written into the real readings table (hypertable with its 7-day chunks, the
 * covering key), realistic values (a varying import, export zero for most meters, all 'actual'), then
 * VACUUMed so the visibility map is set as it would be on a settled database. Heap, index and TOAST are
 * counted together. Compressed size is measured where the server's TimescaleDB edition has compression.
 */
import { createBenchDatabase, provisionBenchMeters } from '../support.js';

const ROWS_PER_METER_YEAR = 365 * 96;

export async function storageScenario(o: { meters: number }) {
  const db = await createBenchDatabase();
  try {
    await provisionBenchMeters(db.client, o.meters);
    const t0 = performance.now();
    await db.client.query(
      `INSERT INTO readings (meter_id, interval_start, interval_seconds, import_mwh, export_mwh, quality)
       SELECT 'MTR-' || m, timestamptz '2025-01-01T00:00:00Z' + (k * interval '15 minutes'), 900,
              (50000 + (hashint4(m * 100000 + k) & 262143))::bigint,
              CASE WHEN m % 5 = 0 THEN (hashint4(k) & 65535)::bigint ELSE 0 END, 'actual'
       FROM generate_series(1, $1::int) m, generate_series(0, $2::int - 1) k
       ORDER BY k, m`,
      [o.meters, ROWS_PER_METER_YEAR],
    );
    const loadSeconds = (performance.now() - t0) / 1000;
    await db.client.query('VACUUM ANALYZE readings');
    const total = Number(
      (await db.client.query(db.storage === 'timescaledb' ? `SELECT hypertable_size('readings') AS b` : `SELECT pg_total_relation_size('readings') AS b`)).rows[0].b,
    );
    const bytesPerMeterYear = Math.round(total / o.meters);
    let compressedBytesPerMeterYear: number | null = null;
    let compression = 'not available (TimescaleDB absent)';
    if (db.storage === 'timescaledb') {
      const license = (await db.client.query(`SELECT current_setting('timescaledb.license') AS l`)).rows[0].l;
      if (license === 'timescale') {
        await db.client.query(`SELECT compress_chunk(c, if_not_compressed => true) FROM show_chunks('readings') c`);
        await db.client.query('VACUUM ANALYZE readings');
        compressedBytesPerMeterYear = Math.round(Number((await db.client.query(`SELECT hypertable_size('readings') AS b`)).rows[0].b) / o.meters);
        compression = 'measured (segment by meter_id, order by interval_start)';
      } else {
        compression = `not measurable here: TimescaleDB ${license} edition has no compression`;
      }
    }
    return {
      storage: db.storage,
      meters: o.meters,
      rows: o.meters * ROWS_PER_METER_YEAR,
      loadSeconds: Math.round(loadSeconds * 10) / 10,
      bytesPerReading: Math.round(total / (o.meters * ROWS_PER_METER_YEAR)),
      bytesPerMeterYear,
      mbPerMeterYear: Math.round((bytesPerMeterYear / 2 ** 20) * 100) / 100,
      compressedBytesPerMeterYear,
      compression,
    };
  } finally {
    await db.drop();
  }
}
