-- Up Migration
-- Readings move into meter_readings (012) and `readings` becomes a view with the columns of 001, so every
-- query that reads readings is unchanged. In one transaction, with the old table locked against writes:
-- copy what `npm run migrate-readings` has not copied ahead (everything, when it was not run), verify every
-- meter's row count, estimated count, interval-seconds sum, import and export sums against the old table
-- (meters that differ are copied again from scratch, then checked again; a remaining difference aborts the
-- migration and leaves the old table as it was), then drop the old table.
LOCK TABLE readings IN EXCLUSIVE MODE;
SELECT readings_layout_copy_delta();
SELECT readings_layout_copy_uncovered();
DO $$
DECLARE
  v_ids text[];
  v_left record;
BEGIN
  SELECT array_agg(x.meter_id) INTO v_ids FROM readings_layout_mismatches() x;
  IF v_ids IS NOT NULL THEN
    RAISE NOTICE 'readings of % meter(s) copied again after a mismatch', cardinality(v_ids);
    PERFORM readings_layout_recopy_meters(v_ids);
  END IF;
  FOR v_left IN SELECT * FROM readings_layout_mismatches() LIMIT 1 LOOP
    RAISE EXCEPTION 'readings of meter "%" differ after the copy (rows % -> %, import % -> %, export % -> %): the readings table is kept; readings of meters that no longer exist cannot be moved',
      v_left.meter_id, v_left.old_rows, v_left.new_rows, v_left.old_import, v_left.new_import, v_left.old_export, v_left.new_export;
  END LOOP;
END
$$;

DROP VIEW readings_layout_source;
DROP FUNCTION readings_layout_mismatches();
DROP FUNCTION readings_layout_recopy_meters(text[]);
DROP FUNCTION readings_layout_copy_uncovered();
DROP FUNCTION readings_layout_copy_delta();
DROP FUNCTION readings_layout_copy_range(timestamptz, timestamptz);
DROP TABLE readings_layout_copy;
DROP TABLE readings;

-- Today's columns, and meter_key last. A query naming meter_id looks the meter up by its primary key, then
-- range-scans (meter_key, interval_start): the same index scans as before. The join hides the order of that
-- scan from the planner, so a query that needs rows in interval_start order with a LIMIT (paging, the first
-- reading) should name the key, `WHERE meter_key = (SELECT key FROM meters WHERE id = $1) ORDER BY
-- interval_start LIMIT n`, which stops after n rows instead of sorting the meter's whole window.
-- interval_seconds, quality and the energies are decoded; received_at is reading_received_at() (whole
-- seconds, rounded up, for on-time actual readings).
CREATE VIEW readings AS
SELECT m.id AS meter_id,
       r.interval_start,
       (r.flags >> 1)::integer * 60 AS interval_seconds,
       COALESCE(r.large_mwh[1], r.import_mwh::bigint) AS import_mwh,
       COALESCE(r.large_mwh[2], r.export_mwh::bigint) AS export_mwh,
       CASE WHEN r.flags & 1 = 0 THEN 'actual' ELSE 'estimated' END AS quality,
       reading_received_at(r.interval_start, r.received_after, r.received_at) AS received_at,
       r.meter_key
FROM meter_readings r JOIN meters m ON m.key = r.meter_key;
ALTER VIEW readings ALTER COLUMN received_at SET DEFAULT now();

-- Writes through the view, for code and tools that write readings directly (ingestion calls
-- ingest_readings(), a close stores its estimates with insert_readings_if_absent()). Rules, not row
-- triggers: an INSERT ... SELECT stays one set-based statement (measured: 100k rows in 2.0 s through the
-- rule, 10 s through an INSTEAD OF trigger, 1.0 s straight into meter_readings). As with the 001 table, an
-- INSERT of a (meter, interval start) already stored fails on the key, and an unknown meter fails on
-- meter_key NOT NULL. A view cannot be an ON CONFLICT target: use insert_readings_if_absent(). UPDATE and
-- DELETE act on the row of that meter and start; meter_key is derived from meter_id and never written.
CREATE RULE readings_insert AS ON INSERT TO readings DO INSTEAD
  INSERT INTO meter_readings (interval_start, meter_key, import_mwh, export_mwh, flags, received_after, received_at, large_mwh)
  VALUES (NEW.interval_start, (SELECT m.key FROM meters m WHERE m.id = NEW.meter_id),
          CASE WHEN NEW.import_mwh > 2147483647 OR NEW.export_mwh > 2147483647 THEN 0 ELSE NEW.import_mwh END,
          CASE WHEN NEW.import_mwh > 2147483647 OR NEW.export_mwh > 2147483647 THEN 0 ELSE NEW.export_mwh END,
          reading_flags(NEW.interval_seconds, NEW.quality),
          reading_received_after(NEW.interval_start, NEW.received_at, NEW.quality = 'estimated'),
          CASE WHEN reading_received_after(NEW.interval_start, NEW.received_at, NEW.quality = 'estimated') IS NULL THEN NEW.received_at END,
          CASE WHEN NEW.import_mwh > 2147483647 OR NEW.export_mwh > 2147483647 THEN ARRAY[NEW.import_mwh, NEW.export_mwh] END);
CREATE RULE readings_update AS ON UPDATE TO readings DO INSTEAD
  UPDATE meter_readings r
     SET interval_start = NEW.interval_start,
         meter_key = (SELECT m.key FROM meters m WHERE m.id = NEW.meter_id),
         import_mwh = CASE WHEN NEW.import_mwh > 2147483647 OR NEW.export_mwh > 2147483647 THEN 0 ELSE NEW.import_mwh END,
         export_mwh = CASE WHEN NEW.import_mwh > 2147483647 OR NEW.export_mwh > 2147483647 THEN 0 ELSE NEW.export_mwh END,
         flags = reading_flags(NEW.interval_seconds, NEW.quality),
         received_after = reading_received_after(NEW.interval_start, NEW.received_at, NEW.quality = 'estimated'),
         received_at = CASE WHEN reading_received_after(NEW.interval_start, NEW.received_at, NEW.quality = 'estimated') IS NULL THEN NEW.received_at END,
         large_mwh = CASE WHEN NEW.import_mwh > 2147483647 OR NEW.export_mwh > 2147483647 THEN ARRAY[NEW.import_mwh, NEW.export_mwh] END
   WHERE r.meter_key = OLD.meter_key AND r.interval_start = OLD.interval_start;
CREATE RULE readings_delete AS ON DELETE TO readings DO INSTEAD
  DELETE FROM meter_readings r WHERE r.meter_key = OLD.meter_key AND r.interval_start = OLD.interval_start;

-- Readings of one quality stored unless their (meter, interval start) is taken (a stored reading wins),
-- all committed at p_received_at; returns how many were stored. Unknown meters are skipped.
CREATE FUNCTION insert_readings_if_absent(p_meter text[], p_start_ms bigint[], p_secs integer[], p_import bigint[], p_export bigint[],
                                          p_quality text, p_received_at timestamptz)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
BEGIN
  INSERT INTO meter_readings (interval_start, meter_key, import_mwh, export_mwh, flags, received_after, received_at, large_mwh)
  SELECT u.interval_start, m.key,
         CASE WHEN u.i > 2147483647 OR u.e > 2147483647 THEN 0 ELSE u.i END,
         CASE WHEN u.i > 2147483647 OR u.e > 2147483647 THEN 0 ELSE u.e END,
         reading_flags(u.secs, p_quality),
         reading_received_after(u.interval_start, p_received_at, p_quality = 'estimated'),
         CASE WHEN reading_received_after(u.interval_start, p_received_at, p_quality = 'estimated') IS NULL THEN p_received_at END,
         CASE WHEN u.i > 2147483647 OR u.e > 2147483647 THEN ARRAY[u.i, u.e] END
  FROM (SELECT x.mid, timestamptz 'epoch' + x.s * interval '1 millisecond' AS interval_start, x.secs, x.i, x.e
        FROM unnest(p_meter, p_start_ms, p_secs, p_import, p_export) AS x(mid, s, secs, i, e)) u
  JOIN meters m ON m.id = u.mid
  ORDER BY m.key, u.interval_start
  ON CONFLICT (meter_key, interval_start) DO NOTHING;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$$;

-- Every query on readings is a short index lookup; the planner's estimate for heap-fetching index scans
-- over several chunks passes jit_above_cost from about 20 meter-months per statement (a bill run's batch
-- of 100: estimated 940k), and JIT compiling then costs 0.2-1.5 s per execution (measured here) for
-- queries that run in tens of milliseconds. Off for this database's new sessions, where the migration may.
DO $$
BEGIN
  EXECUTE format('ALTER DATABASE %I SET jit = off', current_database());
EXCEPTION WHEN insufficient_privilege THEN
  RAISE NOTICE 'jit left on (not the database owner): run ALTER DATABASE % SET jit = off', current_database();
END
$$;

-- ingest_readings as in 010 (same signature, result and rules), writing meter_readings.
CREATE OR REPLACE FUNCTION ingest_readings(
  p_meter text[], p_start_ms bigint[], p_secs integer[], p_import bigint[], p_export bigint[],
  p_quality text[], p_via text[])
RETURNS TABLE (idx integer, outcome text)
LANGUAGE plpgsql AS $$
DECLARE
  v_idx integer[];
  v_outcome text[];
  v_backfill interval := COALESCE((SELECT reading_backfill_days FROM ingest_policy), 1096) * interval '1 day';
BEGIN
  WITH input AS (
    SELECT u.meter_id, timestamptz 'epoch' + u.start_ms * interval '1 millisecond' AS interval_start,
           u.secs, u.import_mwh, u.export_mwh, u.quality, u.via, u.i::integer AS i
    FROM unnest(p_meter, p_start_ms, p_secs, p_import, p_export, p_quality, p_via)
         WITH ORDINALITY AS u(meter_id, start_ms, secs, import_mwh, export_mwh, quality, via, i)
  ),
  checked AS (
    SELECT inp.*, m.key AS meter_key,
      CASE
        WHEN m.id IS NULL THEN 'unknown_meter'
        WHEN inp.via IS NOT NULL AND NOT EXISTS (
          SELECT 1 FROM concentrator_meters cm WHERE cm.concentrator_id = inp.via AND cm.meter_id = inp.meter_id)
          THEN 'not_assigned'
        WHEN inp.secs <> m.interval_seconds THEN 'interval_mismatch'
        WHEN inp.interval_start < m.created_at - v_backfill THEN 'before_service_window'
        WHEN mod(extract(epoch FROM (inp.interval_start AT TIME ZONE m.timezone)), inp.secs) <> 0 THEN 'misaligned'
        WHEN m.max_power_kw IS NOT NULL
             AND greatest(inp.import_mwh, inp.export_mwh)::numeric * 3600 > m.max_power_kw * 1000000 * inp.secs
          THEN 'implausible'
      END AS rejection
    FROM input inp LEFT JOIN meters m ON m.id = inp.meter_id
  ),
  upserted AS (
    INSERT INTO meter_readings AS r (interval_start, meter_key, import_mwh, export_mwh, flags, received_after, received_at, large_mwh)
    SELECT c.interval_start, c.meter_key,
           CASE WHEN c.import_mwh > 2147483647 OR c.export_mwh > 2147483647 THEN 0 ELSE c.import_mwh END,
           CASE WHEN c.import_mwh > 2147483647 OR c.export_mwh > 2147483647 THEN 0 ELSE c.export_mwh END,
           reading_flags(c.secs, c.quality),
           reading_received_after(c.interval_start, now(), c.quality = 'estimated'),
           CASE WHEN reading_received_after(c.interval_start, now(), c.quality = 'estimated') IS NULL THEN now() END,
           CASE WHEN c.import_mwh > 2147483647 OR c.export_mwh > 2147483647 THEN ARRAY[c.import_mwh, c.export_mwh] END
    FROM checked c WHERE c.rejection IS NULL
    ORDER BY c.meter_key, c.interval_start
    ON CONFLICT (meter_key, interval_start) DO UPDATE
      SET import_mwh = excluded.import_mwh, export_mwh = excluded.export_mwh, flags = excluded.flags,
          received_after = excluded.received_after, received_at = excluded.received_at, large_mwh = excluded.large_mwh
      WHERE r.flags & 1 = 1 AND excluded.flags & 1 = 0
    RETURNING r.meter_key, r.interval_start, (r.xmax = 0) AS inserted
  )
  SELECT array_agg(c.i), array_agg(COALESCE(c.rejection,
           CASE WHEN u.inserted THEN 'stored' WHEN u.inserted IS NOT NULL THEN 'replaced' END))
    INTO v_idx, v_outcome
  FROM checked c LEFT JOIN upserted u ON u.meter_key = c.meter_key AND u.interval_start = c.interval_start;

  IF array_position(v_outcome, NULL) IS NULL THEN
    RETURN QUERY SELECT o.i, o.outcome FROM unnest(v_idx, v_outcome) AS o(i, outcome) WHERE o.outcome <> 'stored';
    RETURN;
  END IF;
  -- Readings that met a stored row they may not replace: compare with what is stored now. This is a new
  -- statement, so it sees rows committed by a concurrent batch that the upsert had to wait for.
  RETURN QUERY
  SELECT o.i, COALESCE(o.outcome,
           (SELECT CASE WHEN COALESCE(s.large_mwh[1], s.import_mwh) = p_import[o.i] AND COALESCE(s.large_mwh[2], s.export_mwh) = p_export[o.i]
                        THEN 'duplicate' ELSE 'conflicting_duplicate' END
            FROM meters m JOIN meter_readings s ON s.meter_key = m.key
            WHERE m.id = p_meter[o.i]
              AND s.interval_start = timestamptz 'epoch' + p_start_ms[o.i] * interval '1 millisecond'),
           'duplicate')
  FROM unnest(v_idx, v_outcome) AS o(i, outcome)
  WHERE o.outcome IS DISTINCT FROM 'stored';
END
$$;

-- Compression (Timescale edition only) as in 008, on meter_readings: segments by meter key, ordered by
-- interval start, for chunks older than the late-data horizon (90 days).
CREATE OR REPLACE FUNCTION smbg_enable_readings_compression(p_compress_after interval) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE 'ALTER TABLE meter_readings SET (timescaledb.compress, timescaledb.compress_segmentby = ''meter_key'', timescaledb.compress_orderby = ''interval_start'')';
  PERFORM add_compression_policy('meter_readings', compress_after => p_compress_after, if_not_exists => true);
END
$$;
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
    RETURN;  -- plain storage
  END IF;
  IF coalesce(current_setting('timescaledb.license', true), '') <> 'timescale' THEN
    RAISE NOTICE 'readings compression not enabled: TimescaleDB license is %', current_setting('timescaledb.license', true);
    RETURN;
  END IF;
  IF EXISTS (SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = 'meter_readings') THEN
    PERFORM smbg_enable_readings_compression(interval '90 days');
  END IF;
END
$$;

-- Down Migration
-- The layout change is one way: going back means restoring a backup taken before it (or re-creating the
-- 001 table from the view: CREATE TABLE ... AS SELECT * FROM readings, then 005 and 006's keys).
SELECT 1;
