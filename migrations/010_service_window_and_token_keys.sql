-- Up Migration
-- The earliest interval a meter may report, and keyed API token digests.
--
-- Service window: a reading whose intervalStart is earlier than its meter's creation minus the backfill
-- window (READING_BACKFILL_DAYS, written into ingest_policy by every process at start-up) is refused with
-- the outcome `before_service_window` (a quarantine reason): a meter whose clock reset to 1970 or 1900 can
-- neither store readings decades before it was installed, nor make billing start there, nor make
-- TimescaleDB create a chunk per hostile week. The window is read once per call (a one-row table), so the function stays one set-based statement. The upper bound is the gateway's `future` check.
CREATE TABLE ingest_policy (
  id                    boolean PRIMARY KEY DEFAULT true CHECK (id),
  reading_backfill_days integer NOT NULL DEFAULT 1096 CHECK (reading_backfill_days BETWEEN 0 AND 36500)
);
INSERT INTO ingest_policy DEFAULT VALUES;

-- Outcomes as in 002, plus before_service_window (checked after interval_mismatch, before misaligned).
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
    SELECT inp.*,
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
    INSERT INTO readings AS r (meter_id, interval_start, interval_seconds, import_mwh, export_mwh, quality)
    SELECT c.meter_id, c.interval_start, c.secs, c.import_mwh, c.export_mwh, c.quality
    FROM checked c WHERE c.rejection IS NULL
    ORDER BY c.meter_id, c.interval_start
    ON CONFLICT (meter_id, interval_start) DO UPDATE
      SET interval_seconds = excluded.interval_seconds, import_mwh = excluded.import_mwh,
          export_mwh = excluded.export_mwh, quality = excluded.quality, received_at = now()
      WHERE r.quality = 'estimated' AND excluded.quality = 'actual'
    RETURNING r.meter_id, r.interval_start, (r.xmax = 0) AS inserted
  )
  SELECT array_agg(c.i), array_agg(COALESCE(c.rejection,
           CASE WHEN u.inserted THEN 'stored' WHEN u.inserted IS NOT NULL THEN 'replaced' END))
    INTO v_idx, v_outcome
  FROM checked c LEFT JOIN upserted u ON u.meter_id = c.meter_id AND u.interval_start = c.interval_start;

  IF array_position(v_outcome, NULL) IS NULL THEN
    RETURN QUERY SELECT o.i, o.outcome FROM unnest(v_idx, v_outcome) AS o(i, outcome) WHERE o.outcome <> 'stored';
    RETURN;
  END IF;
  -- Readings that met a stored row they may not replace: compare with what is stored now. This is a new
  -- statement, so it sees rows committed by a concurrent batch that the upsert had to wait for.
  RETURN QUERY
  SELECT o.i, COALESCE(o.outcome,
           (SELECT CASE WHEN s.import_mwh = p_import[o.i] AND s.export_mwh = p_export[o.i]
                        THEN 'duplicate' ELSE 'conflicting_duplicate' END
            FROM readings s
            WHERE s.meter_id = p_meter[o.i]
              AND s.interval_start = timestamptz 'epoch' + p_start_ms[o.i] * interval '1 millisecond'),
           'duplicate')
  FROM unnest(v_idx, v_outcome) AS o(i, outcome)
  WHERE o.outcome IS DISTINCT FROM 'stored';
END
$$;

-- API tokens are stored as HMAC-SHA256(key, SHA-256(token)) with a random key per installation
-- (api_token_key, created by the first process that starts: billing-api/token-digest.ts). Rows stored as a
-- plain SHA-256 digest (hash_scheme 'sha256') are re-keyed in place at start-up: the HMAC's input is the
-- SHA-256 digest, so no token needs to be known to convert it.
CREATE TABLE api_token_key (
  id         boolean PRIMARY KEY DEFAULT true CHECK (id),
  key        bytea NOT NULL CHECK (length(key) >= 32),
  created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE api_tokens ADD COLUMN hash_scheme text NOT NULL DEFAULT 'sha256' CHECK (hash_scheme IN ('sha256', 'hmac-sha256'));

-- Down Migration
CREATE OR REPLACE FUNCTION ingest_readings(
  p_meter text[], p_start_ms bigint[], p_secs integer[], p_import bigint[], p_export bigint[],
  p_quality text[], p_via text[])
RETURNS TABLE (idx integer, outcome text)
LANGUAGE plpgsql AS $$
DECLARE
  v_idx integer[];
  v_outcome text[];
BEGIN
  WITH input AS (
    SELECT u.meter_id, timestamptz 'epoch' + u.start_ms * interval '1 millisecond' AS interval_start,
           u.secs, u.import_mwh, u.export_mwh, u.quality, u.via, u.i::integer AS i
    FROM unnest(p_meter, p_start_ms, p_secs, p_import, p_export, p_quality, p_via)
         WITH ORDINALITY AS u(meter_id, start_ms, secs, import_mwh, export_mwh, quality, via, i)
  ),
  checked AS (
    SELECT inp.*,
      CASE
        WHEN m.id IS NULL THEN 'unknown_meter'
        WHEN inp.via IS NOT NULL AND NOT EXISTS (
          SELECT 1 FROM concentrator_meters cm WHERE cm.concentrator_id = inp.via AND cm.meter_id = inp.meter_id)
          THEN 'not_assigned'
        WHEN inp.secs <> m.interval_seconds THEN 'interval_mismatch'
        WHEN mod(extract(epoch FROM (inp.interval_start AT TIME ZONE m.timezone)), inp.secs) <> 0 THEN 'misaligned'
        WHEN m.max_power_kw IS NOT NULL
             AND greatest(inp.import_mwh, inp.export_mwh)::numeric * 3600 > m.max_power_kw * 1000000 * inp.secs
          THEN 'implausible'
      END AS rejection
    FROM input inp LEFT JOIN meters m ON m.id = inp.meter_id
  ),
  upserted AS (
    INSERT INTO readings AS r (meter_id, interval_start, interval_seconds, import_mwh, export_mwh, quality)
    SELECT c.meter_id, c.interval_start, c.secs, c.import_mwh, c.export_mwh, c.quality
    FROM checked c WHERE c.rejection IS NULL
    ORDER BY c.meter_id, c.interval_start
    ON CONFLICT (meter_id, interval_start) DO UPDATE
      SET interval_seconds = excluded.interval_seconds, import_mwh = excluded.import_mwh,
          export_mwh = excluded.export_mwh, quality = excluded.quality, received_at = now()
      WHERE r.quality = 'estimated' AND excluded.quality = 'actual'
    RETURNING r.meter_id, r.interval_start, (r.xmax = 0) AS inserted
  )
  SELECT array_agg(c.i), array_agg(COALESCE(c.rejection,
           CASE WHEN u.inserted THEN 'stored' WHEN u.inserted IS NOT NULL THEN 'replaced' END))
    INTO v_idx, v_outcome
  FROM checked c LEFT JOIN upserted u ON u.meter_id = c.meter_id AND u.interval_start = c.interval_start;

  IF array_position(v_outcome, NULL) IS NULL THEN
    RETURN QUERY SELECT o.i, o.outcome FROM unnest(v_idx, v_outcome) AS o(i, outcome) WHERE o.outcome <> 'stored';
    RETURN;
  END IF;
  -- Readings that met a stored row they may not replace: compare with what is stored now. This is a new
  -- statement, so it sees rows committed by a concurrent batch that the upsert had to wait for.
  RETURN QUERY
  SELECT o.i, COALESCE(o.outcome,
           (SELECT CASE WHEN s.import_mwh = p_import[o.i] AND s.export_mwh = p_export[o.i]
                        THEN 'duplicate' ELSE 'conflicting_duplicate' END
            FROM readings s
            WHERE s.meter_id = p_meter[o.i]
              AND s.interval_start = timestamptz 'epoch' + p_start_ms[o.i] * interval '1 millisecond'),
           'duplicate')
  FROM unnest(v_idx, v_outcome) AS o(i, outcome)
  WHERE o.outcome IS DISTINCT FROM 'stored';
END
$$;
ALTER TABLE api_tokens DROP COLUMN IF EXISTS hash_scheme;
DROP TABLE IF EXISTS api_token_key, ingest_policy;
