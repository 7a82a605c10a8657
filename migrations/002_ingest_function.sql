-- Up Migration
-- ingest_readings: commits one batch of validated readings in one round trip and says what became of each.
-- Input: parallel arrays, one element per reading, (meter, interval start) unique within the call (the
-- gateway splits repeated keys into successive calls). p_via is the concentrator that sent the reading
-- (NULL on a meter's own topic). p_start_ms is epoch milliseconds (UTC).
-- Returns one row per reading whose outcome is NOT 'stored' (idx is 1-based into the arrays); a reading
-- absent from the result was stored. Outcomes:
--   replaced (an actual reading replaced a stored estimate) | duplicate (identical to the stored one)
--   | unknown_meter | not_assigned | interval_mismatch | misaligned | implausible | conflicting_duplicate
-- Rules (contract section 2): the meter must exist; a concentrator may only send for its assigned meters;
-- intervalSeconds must equal the meter's; intervalStart must be aligned to intervalSeconds in the meter's
-- local wall-clock time (so hourly meters in +05:30 align on local hours); the interval's average power
-- (import or export) must not exceed the meter's max_power_kw; a stored actual reading is never overwritten.
CREATE FUNCTION ingest_readings(
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

-- Down Migration
DROP FUNCTION IF EXISTS ingest_readings(text[], bigint[], integer[], bigint[], bigint[], text[], text[]);
