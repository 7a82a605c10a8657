-- Up Migration
-- Native compression of old readings, where the server has it (Timescale License edition, e.g. the
-- timescale/timescaledb image of docker-compose.yml). The Apache edition built on Debian has hypertables but
-- no compression: there this migration only defines the function and changes nothing.
--
-- Chunks are compressed once all their intervals are older than the late-data horizon: 90 days covers a
-- monthly cycle, its grace period and estimated intervals replaced by late actual readings. Later readings
-- still land (TimescaleDB >= 2.11 inserts and upserts into compressed chunks), only more slowly.
-- Segmenting by meter keeps one meter's month together, which is exactly what rating and billing read.
-- Operators change the horizon with:
--   SELECT remove_compression_policy('readings');
--   SELECT add_compression_policy('readings', compress_after => interval '120 days');
CREATE FUNCTION smbg_enable_readings_compression(p_compress_after interval) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE 'ALTER TABLE readings SET (timescaledb.compress, timescaledb.compress_segmentby = ''meter_id'', timescaledb.compress_orderby = ''interval_start'')';
  PERFORM add_compression_policy('readings', compress_after => p_compress_after, if_not_exists => true);
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
  IF EXISTS (SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = 'readings') THEN
    PERFORM smbg_enable_readings_compression(interval '90 days');
  END IF;
END
$$;

-- Down Migration
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')
     AND coalesce(current_setting('timescaledb.license', true), '') = 'timescale' THEN
    PERFORM remove_compression_policy('readings', if_exists => true);
  END IF;
END
$$;
DROP FUNCTION IF EXISTS smbg_enable_readings_compression(interval);
