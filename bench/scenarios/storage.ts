/**
 * storage: bytes on disk per 15-minute reading and per meter-year (35,040 readings), for sizing, of the
 * readings layout (meter_readings behind the readings view, migrations 012-013) side by side with the 001-010
 * layout (text meter id in every row, received_at, the covering key of 006, the late index of 005), in the same
 * database, from the same rows. Readings arrive as live ingestion writes them: interval by interval across
 * `meters` meters (1,000: the interleaving that decides how full the key's pages get; with a few dozen
 * meters the key packs tighter than it will in production), for `days` days, values as meters give them (a
 * varying import, export on every fifth meter), committed within minutes of their interval, and 0.5% of
 * them committed days late (the late-readings index holds those). Then VACUUM ANALYZE, as autovacuum leaves
 * a settled database. Heap, each index and TOAST are reported separately (summed over chunks on a
 * hypertable); a meter-year is bytes per reading x 35,040. With TimescaleDB also after the closed chunks are
 * rewritten in meter order (migrations/014), and compressed where the edition has compression.
 */
import { createBenchDatabase, provisionBenchMeters, type BenchDatabase } from '../support.js';
import { reorderReadings } from '../../scripts/reorder-readings.js';

const READINGS_PER_METER_YEAR = 365 * 96;

/** The readings table of migrations 001, 005 and 006, under another name. */
const LAYOUT_001 = `
CREATE TABLE readings_001 (
  meter_id         text NOT NULL,
  interval_start   timestamptz NOT NULL,
  interval_seconds integer NOT NULL,
  import_mwh       bigint NOT NULL CHECK (import_mwh >= 0),
  export_mwh       bigint NOT NULL CHECK (export_mwh >= 0),
  quality          text NOT NULL CHECK (quality IN ('actual', 'estimated')),
  received_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT readings_001_pkey PRIMARY KEY (meter_id, interval_start) INCLUDE (interval_seconds, import_mwh, export_mwh, quality)
);
CREATE INDEX readings_001_late_idx ON readings_001 (meter_id, received_at) WHERE received_at - interval_start > interval '1 hour';`;

/** Rows as ingestion writes them: interval k of all meters, then k + 1. */
const ROWS = (target: string) => `
INSERT INTO ${target} (meter_id, interval_start, interval_seconds, import_mwh, export_mwh, quality, received_at)
SELECT 'MTR-' || m, t, 900,
       (50000 + (hashint4(m * 100000 + k) & 262143))::bigint,
       CASE WHEN m % 5 = 0 THEN (hashint4(k) & 65535)::bigint ELSE 0 END, 'actual',
       CASE WHEN hashint4(m * 7 + k * 131) & 1023 < 5 THEN t + interval '3 days 2 hours'
            ELSE t + interval '15 minutes' + (hashint4(m + k) & 262143) * interval '1 millisecond' END
FROM generate_series(0, $2::int - 1) k
CROSS JOIN LATERAL (SELECT timestamptz '2025-01-01T00:00:00Z' + k * interval '15 minutes' AS t) tt
CROSS JOIN generate_series(1, $1::int) m
ORDER BY k, m`;

interface RelationBytes {
  heap: number;
  toast: number;
  indexes: Record<string, number>;
  total: number;
}

async function relationBytes(db: BenchDatabase, table: string, indexes: string[]): Promise<RelationBytes> {
  const q = async (sql: string, params: unknown[] = []) => Number((await db.client.query(sql, params)).rows[0].b);
  if (db.storage === 'timescaledb') {
    const d = (await db.client.query(`SELECT table_bytes, toast_bytes, total_bytes FROM hypertable_detailed_size($1)`, [table])).rows[0];
    const out: RelationBytes = { heap: Number(d.table_bytes), toast: Number(d.toast_bytes), indexes: {}, total: Number(d.total_bytes) };
    for (const i of indexes) out.indexes[i] = await q(`SELECT hypertable_index_size($1) AS b`, [i]);
    return out;
  }
  const out: RelationBytes = {
    heap: await q(`SELECT pg_relation_size($1) AS b`, [table]),
    toast: await q(`SELECT COALESCE((SELECT pg_total_relation_size(reltoastrelid) FROM pg_class WHERE oid = $1::regclass AND reltoastrelid <> 0), 0) AS b`, [table]),
    indexes: {},
    total: await q(`SELECT pg_total_relation_size($1) AS b`, [table]),
  };
  for (const i of indexes) out.indexes[i] = await q(`SELECT pg_relation_size($1) AS b`, [i]);
  return out;
}

function perReading(b: RelationBytes, rows: number) {
  const r = (n: number) => Math.round((n / rows) * 10) / 10;
  const bytesPerReading = r(b.total);
  return {
    bytesPerReading,
    heap: r(b.heap),
    indexes: Object.fromEntries(Object.entries(b.indexes).map(([k, v]) => [k, r(v)])),
    toast: r(b.toast),
    mbPerMeterYear: Math.round(((b.total / rows) * READINGS_PER_METER_YEAR * 100) / 2 ** 20) / 100,
  };
}

export async function storageScenario(o: { meters: number; days: number }) {
  const db = await createBenchDatabase();
  try {
    await provisionBenchMeters(db.client, o.meters);
    await db.client.query(LAYOUT_001);
    if (db.storage === 'timescaledb') {
      await db.client.query(`SELECT create_hypertable('readings_001', 'interval_start', chunk_time_interval => interval '7 days', create_default_indexes => false)`);
    }
    const intervals = o.days * 96;
    const rows = o.meters * intervals;
    const t0 = performance.now();
    await db.client.query(ROWS('readings_001'), [o.meters, intervals]);
    const t1 = performance.now();
    await db.client.query(ROWS('readings'), [o.meters, intervals]);
    const t2 = performance.now();
    await db.client.query('VACUUM ANALYZE readings_001');
    await db.client.query('VACUUM ANALYZE meter_readings');
    const stored = Number((await db.client.query(`SELECT count(*) AS n FROM meter_readings`)).rows[0].n);
    if (stored !== rows) throw new Error(`meter_readings holds ${stored} rows, expected ${rows}`);

    const before = perReading(await relationBytes(db, 'readings_001', ['readings_001_pkey', 'readings_001_late_idx']), rows);
    const after = perReading(await relationBytes(db, 'meter_readings', ['meter_readings_pkey', 'meter_readings_late_idx']), rows);

    // Closed chunks in meter order (migrations/014): the heap as dense, the key rebuilt at the index fill factor.
    let reordered: ReturnType<typeof perReading> | null = null;
    if (db.storage === 'timescaledb') {
      await reorderReadings({ databaseUrl: db.url });
      await db.client.query('VACUUM ANALYZE meter_readings');
      reordered = perReading(await relationBytes(db, 'meter_readings', ['meter_readings_pkey', 'meter_readings_late_idx']), rows);
    }

    let compressedBytesPerMeterYear: number | null = null;
    let compression = 'not available (TimescaleDB absent)';
    if (db.storage === 'timescaledb') {
      const license = (await db.client.query(`SELECT current_setting('timescaledb.license') AS l`)).rows[0].l;
      if (license === 'timescale') {
        await db.client.query(`SELECT compress_chunk(c, if_not_compressed => true) FROM show_chunks('meter_readings') c`);
        await db.client.query('VACUUM ANALYZE meter_readings');
        const total = Number((await db.client.query(`SELECT hypertable_size('meter_readings') AS b`)).rows[0].b);
        compressedBytesPerMeterYear = Math.round((total / rows) * READINGS_PER_METER_YEAR);
        compression = 'measured (meter_readings: segment by meter_key, order by interval_start)';
      } else {
        compression = `not measurable here: TimescaleDB ${license} edition has no compression`;
      }
    }
    return {
      storage: db.storage,
      meters: o.meters,
      days: o.days,
      rows,
      loadSeconds: { layout001: Math.round((t1 - t0) / 100) / 10, meterReadings: Math.round((t2 - t1) / 100) / 10 },
      // the current layout (meter_readings); the headline figures
      bytesPerReading: after.bytesPerReading,
      bytesPerMeterYear: Math.round(after.bytesPerReading * READINGS_PER_METER_YEAR),
      mbPerMeterYear: after.mbPerMeterYear,
      meterReadings: after,
      meterReadingsReordered: reordered,
      layout001: before,
      compressedBytesPerMeterYear,
      compression,
    };
  } finally {
    await db.drop();
  }
}
