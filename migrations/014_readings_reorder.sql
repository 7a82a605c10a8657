-- Up Migration
-- Closed chunks of meter_readings in meter order. Live ingestion writes readings interval by interval across
-- all meters, so in a freshly written chunk one meter's week lies on one heap page per reading (672 pages
-- for 672 readings). Rewritten in (meter_key, interval_start) order, the week is ~5 consecutive pages and
-- the key is rebuilt densely (measured: a meter-month read 2,976 -> ~40 buffers, the loader of a bill run's
-- 100 meter-months 5x faster, key 44 -> 31 bytes a reading). New readings keep arriving in the open chunk
-- only; late ones land at the end of a reordered chunk and cost one more page each.
--
-- Timescale edition: a reorder policy does it in the background (reorder_chunk holds the exclusive lock
-- only to swap the rewritten chunk in). Apache edition: reorder_readings_chunk() CLUSTERs the oldest closed
-- chunk not yet in meter order and returns its name (NULL when none is left); `npm run reorder-readings`
-- calls it until none is left, one chunk per transaction. CLUSTER locks the chunk against reads and writes
-- while it rewrites it: run it daily, outside the busiest hour (measured rate in migrations/README.md).
-- Plain storage has no chunks: the function returns NULL (CLUSTER meter_readings USING meter_readings_pkey
-- reorders the whole table, locking it for the time of the rewrite).
CREATE FUNCTION reorder_readings_chunk(p_closed_for interval DEFAULT interval '1 day') RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_chunk regclass;
  v_index name;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
    RETURN NULL;
  END IF;
  EXECUTE $q$
    SELECT format('%I.%I', c.chunk_schema, c.chunk_name)::regclass
    FROM timescaledb_information.chunks c
    WHERE c.hypertable_schema = 'public' AND c.hypertable_name = 'meter_readings'
      AND c.range_end <= now() - $1 AND NOT c.is_compressed
      AND NOT EXISTS (SELECT 1 FROM pg_index i
                      WHERE i.indrelid = format('%I.%I', c.chunk_schema, c.chunk_name)::regclass AND i.indisclustered)
    ORDER BY c.range_start
    LIMIT 1$q$ INTO v_chunk USING p_closed_for;
  IF v_chunk IS NULL THEN
    RETURN NULL;
  END IF;
  SELECT ic.relname INTO v_index FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid = v_chunk AND i.indisprimary;
  EXECUTE format('CLUSTER %s USING %I', v_chunk, v_index);
  EXECUTE format('ANALYZE %s', v_chunk);
  RETURN v_chunk::text;
END
$$;

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
    RETURN;
  END IF;
  IF coalesce(current_setting('timescaledb.license', true), '') <> 'timescale' THEN
    RETURN;  -- Apache edition: npm run reorder-readings
  END IF;
  IF EXISTS (SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = 'meter_readings') THEN
    PERFORM add_reorder_policy('meter_readings', 'meter_readings_pkey', if_not_exists => true);
  END IF;
END
$$;

-- Down Migration
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')
     AND coalesce(current_setting('timescaledb.license', true), '') = 'timescale' THEN
    PERFORM remove_reorder_policy('meter_readings', if_exists => true);
  END IF;
END
$$;
DROP FUNCTION IF EXISTS reorder_readings_chunk(interval);
