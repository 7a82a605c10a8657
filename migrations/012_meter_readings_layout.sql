-- Up Migration
-- The narrow readings layout (meter_readings), created next to the readings table of 001-010 without
-- touching it: 013 moves the data and puts a view named readings in its place. Every statement here is
-- idempotent, so that `npm run migrate-readings` can apply this file ahead of the upgrade and copy the
-- data week by week while the previous version keeps running (see README.md, "Readings layout").
--
-- One row per (meter, interval start), 52 bytes of heap (24-byte row header, 24 bytes of data, 4-byte line
-- pointer) plus ~28-42 bytes of key:
--   interval_start  timestamptz first (8-byte alignment without padding)
--   meter_key       meters.key, a 4-byte surrogate of the text meter id (ids stay text at every boundary)
--   import_mwh, export_mwh  int4 milliwatt-hours: exact up to 2,147,483,647 mWh (2,147 kWh per interval).
--                   Larger values (the contract has no upper bound) are stored exactly in large_mwh
--                   {import, export} (int8), and both int4 columns are 0; NULL on ordinary rows.
--   flags           interval length in minutes << 1, bit 0 set for an estimated reading
--   received_after  when the row (or its latest replacement) committed, as whole seconds after
--                   interval_start, rounded up: for actual readings committed within -9.1 h..+9.1 h of their
--                   interval (int2). Otherwise received_at holds the exact instant (estimates, late data).
-- NULL columns cost nothing but the row's null bitmap, which fits in the header's padding (8 columns).

ALTER TABLE meters ADD COLUMN IF NOT EXISTS key integer GENERATED ALWAYS AS IDENTITY;
CREATE UNIQUE INDEX IF NOT EXISTS meters_key_idx ON meters (key);

CREATE TABLE IF NOT EXISTS meter_readings (
  interval_start timestamptz NOT NULL,
  meter_key      integer NOT NULL,
  import_mwh     integer NOT NULL CHECK (import_mwh >= 0),
  export_mwh     integer NOT NULL CHECK (export_mwh >= 0),
  flags          smallint NOT NULL CHECK (flags >= 2),
  received_after smallint,
  received_at    timestamptz,
  large_mwh      bigint[] CHECK (large_mwh IS NULL OR (cardinality(large_mwh) = 2 AND large_mwh[1] >= 0 AND large_mwh[2] >= 0
                                                       AND import_mwh = 0 AND export_mwh = 0)),
  CONSTRAINT meter_readings_received CHECK ((received_after IS NULL) <> (received_at IS NULL)),
  CONSTRAINT meter_readings_pkey PRIMARY KEY (meter_key, interval_start)
);

-- When the row committed. IMMUTABLE is true: adding whole seconds to a timestamptz does not depend on the
-- session's time zone (only day and month steps do). plpgsql so that it is never inlined: the late-readings
-- index below and the readings view use the same call, which is how the planner matches them.
CREATE OR REPLACE FUNCTION reading_received_at(p_interval_start timestamptz, p_received_after smallint, p_received_at timestamptz)
RETURNS timestamptz LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
  RETURN COALESCE(p_received_at, p_interval_start + p_received_after * interval '1 second');
END
$$;

-- received_after for a row committed at p_at (NULL: store p_at in received_at).
CREATE OR REPLACE FUNCTION reading_received_after(p_interval_start timestamptz, p_at timestamptz, p_estimated boolean)
RETURNS smallint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN NOT p_estimated AND ceil(extract(epoch FROM p_at - p_interval_start)) BETWEEN -32768 AND 32767
              THEN ceil(extract(epoch FROM p_at - p_interval_start))::smallint END
$$;

-- flags of a reading; NULL (refused by NOT NULL) for a quality other than actual/estimated or an interval
-- that is not whole minutes.
CREATE OR REPLACE FUNCTION reading_flags(p_interval_seconds integer, p_quality text)
RETURNS smallint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN p_interval_seconds > 0 AND p_interval_seconds % 60 = 0 AND p_interval_seconds <= 16383 * 60
              THEN ((p_interval_seconds / 60) * 2 + CASE p_quality WHEN 'actual' THEN 0 WHEN 'estimated' THEN 1 END)::smallint END
$$;

-- Late readings (committed more than an hour after their interval started), for adjustments: the same
-- predicate as the readings view's received_at - interval_start > interval '1 hour', so queries on the view
-- use it. On-time rows are not in it.
CREATE INDEX IF NOT EXISTS meter_readings_late_idx
  ON meter_readings (meter_key, reading_received_at(interval_start, received_after, received_at))
  WHERE reading_received_at(interval_start, received_after, received_at) - interval_start > interval '1 hour';

-- A hypertable where readings is one (same chunk interval).
DO $$
DECLARE
  v_chunk interval := interval '7 days';
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
    RETURN;
  END IF;
  IF EXISTS (SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_schema = 'public' AND hypertable_name = 'meter_readings') THEN
    RETURN;
  END IF;
  IF to_regclass('public.readings') IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_schema = 'public' AND hypertable_name = 'readings') THEN
    RETURN;  -- a plain-mode database with the extension: stays plain
  END IF;
  SELECT d.time_interval INTO v_chunk FROM timescaledb_information.dimensions d
   WHERE d.hypertable_schema = 'public' AND d.hypertable_name = 'readings' AND d.column_name = 'interval_start';
  PERFORM create_hypertable('meter_readings', 'interval_start', chunk_time_interval => COALESCE(v_chunk, interval '7 days'),
                            create_default_indexes => false);
END
$$;

-- Copying from the readings table of 001-010, by ranges of interval_start, resumable: a range is copied in
-- one transaction and recorded here; rows the previous version writes into copied ranges afterwards are
-- found by their received_at (readings_layout_copy_delta). 013 finishes the copy, verifies every meter's
-- count and sums, drops the old table and this bookkeeping.
CREATE TABLE IF NOT EXISTS readings_layout_copy (
  range_start timestamptz PRIMARY KEY,
  range_end   timestamptz NOT NULL,
  copied_at   timestamptz NOT NULL,
  rows        bigint NOT NULL
);

-- The old rows in the new encoding (unknown meters are left out, and then reported by the verification).
CREATE OR REPLACE VIEW readings_layout_source AS
SELECT o.interval_start, m.key AS meter_key,
       CASE WHEN o.import_mwh > 2147483647 OR o.export_mwh > 2147483647 THEN 0 ELSE o.import_mwh END AS import_mwh,
       CASE WHEN o.import_mwh > 2147483647 OR o.export_mwh > 2147483647 THEN 0 ELSE o.export_mwh END AS export_mwh,
       reading_flags(o.interval_seconds, o.quality) AS flags,
       reading_received_after(o.interval_start, o.received_at, o.quality = 'estimated') AS received_after,
       CASE WHEN reading_received_after(o.interval_start, o.received_at, o.quality = 'estimated') IS NULL THEN o.received_at END AS received_at,
       CASE WHEN o.import_mwh > 2147483647 OR o.export_mwh > 2147483647 THEN ARRAY[o.import_mwh, o.export_mwh] END AS large_mwh,
       o.received_at AS committed_at
FROM readings o JOIN meters m ON m.id = o.meter_id;

-- Old rows of [p_from, p_to) into meter_readings (rows already there take the old values), recorded.
CREATE OR REPLACE FUNCTION readings_layout_copy_range(p_from timestamptz, p_to timestamptz)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
BEGIN
  INSERT INTO meter_readings AS r (interval_start, meter_key, import_mwh, export_mwh, flags, received_after, received_at, large_mwh)
  SELECT s.interval_start, s.meter_key, s.import_mwh, s.export_mwh, s.flags, s.received_after, s.received_at, s.large_mwh
  FROM readings_layout_source s
  WHERE s.interval_start >= p_from AND s.interval_start < p_to
  ORDER BY s.meter_key, s.interval_start
  ON CONFLICT (meter_key, interval_start) DO UPDATE
    SET import_mwh = excluded.import_mwh, export_mwh = excluded.export_mwh, flags = excluded.flags,
        received_after = excluded.received_after, received_at = excluded.received_at, large_mwh = excluded.large_mwh;
  GET DIAGNOSTICS n = ROW_COUNT;
  INSERT INTO readings_layout_copy (range_start, range_end, copied_at, rows) VALUES (p_from, p_to, now(), n)
  ON CONFLICT (range_start) DO UPDATE SET range_end = excluded.range_end, copied_at = excluded.copied_at, rows = excluded.rows;
  RETURN n;
END
$$;

-- Old rows committed since the earliest recorded copy (minus 10 minutes for transactions that started before
-- it and committed after), into meter_readings. received_at is the writing transaction's start; on-time rows
-- lie within an hour after their interval start (a recent time range), late rows come from readings_late_idx.
CREATE OR REPLACE FUNCTION readings_layout_copy_delta()
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  v_since timestamptz := (SELECT min(copied_at) - interval '10 minutes' FROM readings_layout_copy);
  n bigint;
BEGIN
  IF v_since IS NULL THEN
    RETURN 0;
  END IF;
  INSERT INTO meter_readings AS r (interval_start, meter_key, import_mwh, export_mwh, flags, received_after, received_at, large_mwh)
  SELECT s.interval_start, s.meter_key, s.import_mwh, s.export_mwh, s.flags, s.received_after, s.received_at, s.large_mwh
  FROM (
    SELECT * FROM readings_layout_source WHERE committed_at > v_since AND committed_at - interval_start > interval '1 hour'
    UNION
    SELECT * FROM readings_layout_source WHERE interval_start > v_since - interval '1 hour' AND committed_at > v_since
  ) s
  ORDER BY s.meter_key, s.interval_start
  ON CONFLICT (meter_key, interval_start) DO UPDATE
    SET import_mwh = excluded.import_mwh, export_mwh = excluded.export_mwh, flags = excluded.flags,
        received_after = excluded.received_after, received_at = excluded.received_at, large_mwh = excluded.large_mwh;
  GET DIAGNOSTICS n = ROW_COUNT;
  UPDATE readings_layout_copy SET copied_at = now();
  RETURN n;
END
$$;

-- Old rows outside every recorded range (all of them when nothing was copied ahead), into meter_readings:
-- one statement per gap between the recorded ranges (and before the first, after the last), so that on a
-- hypertable only the chunks of the gaps are read.
CREATE OR REPLACE FUNCTION readings_layout_copy_uncovered()
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  n bigint := 0;
  k bigint;
  g record;
BEGIN
  FOR g IN
    WITH r AS (SELECT range_start, range_end, lag(range_end) OVER (ORDER BY range_start) AS previous_end FROM readings_layout_copy),
    gaps AS (
      SELECT '-infinity'::timestamptz AS f, COALESCE((SELECT min(range_start) FROM r), 'infinity') AS t
      UNION ALL SELECT previous_end, range_start FROM r WHERE previous_end < range_start
      UNION ALL SELECT max(range_end), 'infinity' FROM r HAVING count(*) > 0
    )
    SELECT f, t FROM gaps WHERE f < t
  LOOP
    INSERT INTO meter_readings AS r (interval_start, meter_key, import_mwh, export_mwh, flags, received_after, received_at, large_mwh)
    SELECT s.interval_start, s.meter_key, s.import_mwh, s.export_mwh, s.flags, s.received_after, s.received_at, s.large_mwh
    FROM readings_layout_source s
    WHERE s.interval_start >= g.f AND s.interval_start < g.t
    ORDER BY s.meter_key, s.interval_start
    ON CONFLICT (meter_key, interval_start) DO UPDATE
      SET import_mwh = excluded.import_mwh, export_mwh = excluded.export_mwh, flags = excluded.flags,
          received_after = excluded.received_after, received_at = excluded.received_at, large_mwh = excluded.large_mwh;
    GET DIAGNOSTICS k = ROW_COUNT;
    n := n + k;
  END LOOP;
  RETURN n;
END
$$;

-- Every row of the given meters again, from the old table (after a mismatch: rows deleted there since).
CREATE OR REPLACE FUNCTION readings_layout_recopy_meters(p_meter_ids text[])
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
BEGIN
  DELETE FROM meter_readings r USING meters m WHERE m.key = r.meter_key AND m.id = ANY (p_meter_ids);
  INSERT INTO meter_readings (interval_start, meter_key, import_mwh, export_mwh, flags, received_after, received_at, large_mwh)
  SELECT s.interval_start, s.meter_key, s.import_mwh, s.export_mwh, s.flags, s.received_after, s.received_at, s.large_mwh
  FROM readings_layout_source s JOIN meters m ON m.key = s.meter_key
  WHERE m.id = ANY (p_meter_ids)
  ORDER BY s.meter_key, s.interval_start;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$$;

-- Meters whose count, estimated count, interval-seconds sum, import sum or export sum differ between the
-- old table and meter_readings (nothing when the copy is complete).
CREATE OR REPLACE FUNCTION readings_layout_mismatches()
RETURNS TABLE (meter_id text, old_rows bigint, new_rows bigint, old_import numeric, new_import numeric, old_export numeric, new_export numeric)
LANGUAGE sql AS $$
  WITH o AS (
    SELECT meter_id, count(*) AS n, count(*) FILTER (WHERE quality = 'estimated') AS est, sum(interval_seconds::bigint) AS secs,
           sum(import_mwh::numeric) AS imp, sum(export_mwh::numeric) AS exp
    FROM readings GROUP BY meter_id
  ), nw AS (
    SELECT m.id AS meter_id, count(*) AS n, count(*) FILTER (WHERE r.flags & 1 = 1) AS est, sum((r.flags >> 1)::bigint * 60) AS secs,
           sum(COALESCE(r.large_mwh[1], r.import_mwh)::numeric) AS imp, sum(COALESCE(r.large_mwh[2], r.export_mwh)::numeric) AS exp
    FROM meter_readings r JOIN meters m ON m.key = r.meter_key GROUP BY m.id
  )
  SELECT COALESCE(o.meter_id, nw.meter_id), o.n, nw.n, o.imp, nw.imp, o.exp, nw.exp
  FROM o FULL JOIN nw ON nw.meter_id = o.meter_id
  WHERE o.n IS DISTINCT FROM nw.n OR o.est IS DISTINCT FROM nw.est OR o.secs IS DISTINCT FROM nw.secs
     OR o.imp IS DISTINCT FROM nw.imp OR o.exp IS DISTINCT FROM nw.exp
  ORDER BY 1
$$;

-- Down Migration
DROP FUNCTION IF EXISTS readings_layout_mismatches();
DROP FUNCTION IF EXISTS readings_layout_recopy_meters(text[]);
DROP FUNCTION IF EXISTS readings_layout_copy_uncovered();
DROP FUNCTION IF EXISTS readings_layout_copy_delta();
DROP FUNCTION IF EXISTS readings_layout_copy_range(timestamptz, timestamptz);
DROP VIEW IF EXISTS readings_layout_source;
DROP TABLE IF EXISTS readings_layout_copy;
DROP TABLE IF EXISTS meter_readings;
DROP FUNCTION IF EXISTS reading_flags(integer, text);
DROP FUNCTION IF EXISTS reading_received_after(timestamptz, timestamptz, boolean);
DROP FUNCTION IF EXISTS reading_received_at(timestamptz, smallint, timestamptz);
DROP INDEX IF EXISTS meters_key_idx;
ALTER TABLE meters DROP COLUMN IF EXISTS key;
