-- Up Migration
-- Reactive energy per interval (CONTRACT section 2 extension: reactiveImportVarh, OBIS 3.8.0, and
-- reactiveExportVarh, OBIS 4.8.0), optional: NULL = not measured, distinct from 0.
--
-- Stored without a new column. meter_readings has 8 columns, so its null bitmap (1 byte) fits in the tuple
-- header's padding (23 + 1 = 24 bytes); a 9th or 10th column makes the bitmap 2 bytes and the header 32,
-- 8 bytes more on every ordinary row (measured with pageinspect: 48 -> 56 bytes a tuple, with 2 int8
-- columns or 1 int8[] column, NULL). The values go into large_mwh instead, the nullable array that already
-- holds what the int4 columns cannot say: [import, export] when an energy exceeds int4 (the int4 columns 0),
-- and [import or NULL, export or NULL, reactive import, reactive export] when reactive energy was sent
-- (import and export stay in the int4 columns when they fit; a reactive element is NULL when not sent).
-- Ordinary rows stay NULL there, 48 bytes.

-- What large_mwh may hold: as before, or the four elements with at least one reactive value. Existing rows
-- satisfy it (they satisfied the narrower check), so it is added without a scan of the table.
ALTER TABLE meter_readings DROP CONSTRAINT meter_readings_check;
ALTER TABLE meter_readings ADD CONSTRAINT meter_readings_large_mwh CHECK (
  large_mwh IS NULL
  OR (cardinality(large_mwh) = 2 AND large_mwh[1] >= 0 AND large_mwh[2] >= 0 AND import_mwh = 0 AND export_mwh = 0)
  OR (cardinality(large_mwh) = 4 AND (large_mwh[3] IS NOT NULL OR large_mwh[4] IS NOT NULL)
      AND COALESCE(large_mwh[3], 0) >= 0 AND COALESCE(large_mwh[4], 0) >= 0
      AND ((large_mwh[1] IS NULL AND large_mwh[2] IS NULL)
           OR (large_mwh[1] >= 0 AND large_mwh[2] >= 0 AND import_mwh = 0 AND export_mwh = 0)))) NOT VALID;

-- The large_mwh of a reading: NULL on ordinary rows.
CREATE FUNCTION reading_large_mwh(p_import bigint, p_export bigint, p_reactive_import bigint, p_reactive_export bigint)
RETURNS bigint[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN p_reactive_import IS NULL AND p_reactive_export IS NULL THEN
      CASE WHEN p_import > 2147483647 OR p_export > 2147483647 THEN ARRAY[p_import, p_export] END
    WHEN p_import > 2147483647 OR p_export > 2147483647 THEN ARRAY[p_import, p_export, p_reactive_import, p_reactive_export]
    ELSE ARRAY[NULL, NULL, p_reactive_import, p_reactive_export]::bigint[]
  END
$$;

-- The view gains the two reactive columns, last (existing queries are unchanged).
CREATE OR REPLACE VIEW readings AS
SELECT m.id AS meter_id,
       r.interval_start,
       (r.flags >> 1)::integer * 60 AS interval_seconds,
       COALESCE(r.large_mwh[1], r.import_mwh::bigint) AS import_mwh,
       COALESCE(r.large_mwh[2], r.export_mwh::bigint) AS export_mwh,
       CASE WHEN r.flags & 1 = 0 THEN 'actual' ELSE 'estimated' END AS quality,
       reading_received_at(r.interval_start, r.received_after, r.received_at) AS received_at,
       r.meter_key,
       r.large_mwh[3] AS reactive_import_mvarh,
       r.large_mwh[4] AS reactive_export_mvarh
FROM meter_readings r JOIN meters m ON m.key = r.meter_key;

CREATE OR REPLACE RULE readings_insert AS ON INSERT TO readings DO INSTEAD
  INSERT INTO meter_readings (interval_start, meter_key, import_mwh, export_mwh, flags, received_after, received_at, large_mwh)
  VALUES (NEW.interval_start, (SELECT m.key FROM meters m WHERE m.id = NEW.meter_id),
          CASE WHEN NEW.import_mwh > 2147483647 OR NEW.export_mwh > 2147483647 THEN 0 ELSE NEW.import_mwh END,
          CASE WHEN NEW.import_mwh > 2147483647 OR NEW.export_mwh > 2147483647 THEN 0 ELSE NEW.export_mwh END,
          reading_flags(NEW.interval_seconds, NEW.quality),
          reading_received_after(NEW.interval_start, NEW.received_at, NEW.quality = 'estimated'),
          CASE WHEN reading_received_after(NEW.interval_start, NEW.received_at, NEW.quality = 'estimated') IS NULL THEN NEW.received_at END,
          reading_large_mwh(NEW.import_mwh, NEW.export_mwh, NEW.reactive_import_mvarh, NEW.reactive_export_mvarh));
CREATE OR REPLACE RULE readings_update AS ON UPDATE TO readings DO INSTEAD
  UPDATE meter_readings r
     SET interval_start = NEW.interval_start,
         meter_key = (SELECT m.key FROM meters m WHERE m.id = NEW.meter_id),
         import_mwh = CASE WHEN NEW.import_mwh > 2147483647 OR NEW.export_mwh > 2147483647 THEN 0 ELSE NEW.import_mwh END,
         export_mwh = CASE WHEN NEW.import_mwh > 2147483647 OR NEW.export_mwh > 2147483647 THEN 0 ELSE NEW.export_mwh END,
         flags = reading_flags(NEW.interval_seconds, NEW.quality),
         received_after = reading_received_after(NEW.interval_start, NEW.received_at, NEW.quality = 'estimated'),
         received_at = CASE WHEN reading_received_after(NEW.interval_start, NEW.received_at, NEW.quality = 'estimated') IS NULL THEN NEW.received_at END,
         large_mwh = reading_large_mwh(NEW.import_mwh, NEW.export_mwh, NEW.reactive_import_mvarh, NEW.reactive_export_mvarh)
   WHERE r.meter_key = OLD.meter_key AND r.interval_start = OLD.interval_start;

-- ingest_readings with every rule of 013 (unknown_meter, not_assigned, interval_mismatch,
-- before_service_window, misaligned, implausible; an actual reading replaces an estimate; duplicates and
-- conflicting duplicates compared with what is stored), plus two optional arrays of reactive energy
-- (mvarh; NULL array or element: not sent). Callers with seven arguments are unchanged.
-- A reading resent for a stored (meter, interval start) with the same quality and the same import and
-- export that adds reactive energy the stored one lacks is an update ('replaced': the reactive values are
-- filled in, the commit time is the resend's); one whose reactive values differ from stored ones is a
-- conflicting_duplicate; one that only omits stored reactive values is a duplicate (nothing is lost).
DROP FUNCTION ingest_readings(text[], bigint[], integer[], bigint[], bigint[], text[], text[]);
CREATE FUNCTION ingest_readings(
  p_meter text[], p_start_ms bigint[], p_secs integer[], p_import bigint[], p_export bigint[],
  p_quality text[], p_via text[], p_reactive_import bigint[] DEFAULT NULL, p_reactive_export bigint[] DEFAULT NULL)
RETURNS TABLE (idx integer, outcome text)
LANGUAGE plpgsql AS $$
DECLARE
  v_idx integer[];
  v_outcome text[];
  v_backfill interval := COALESCE((SELECT reading_backfill_days FROM ingest_policy), 1096) * interval '1 day';
BEGIN
  WITH input AS (
    SELECT u.meter_id, timestamptz 'epoch' + u.start_ms * interval '1 millisecond' AS interval_start,
           u.secs, u.import_mwh, u.export_mwh, u.quality, u.via, u.reactive_import, u.reactive_export, u.i::integer AS i
    FROM unnest(p_meter, p_start_ms, p_secs, p_import, p_export, p_quality, p_via, p_reactive_import, p_reactive_export)
         WITH ORDINALITY AS u(meter_id, start_ms, secs, import_mwh, export_mwh, quality, via, reactive_import, reactive_export, i)
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
           reading_large_mwh(c.import_mwh, c.export_mwh, c.reactive_import, c.reactive_export)
    FROM checked c WHERE c.rejection IS NULL
    ORDER BY c.meter_key, c.interval_start
    ON CONFLICT (meter_key, interval_start) DO UPDATE
      SET import_mwh = excluded.import_mwh, export_mwh = excluded.export_mwh, flags = excluded.flags,
          received_after = excluded.received_after, received_at = excluded.received_at,
          large_mwh = CASE WHEN r.flags & 1 = 1 AND excluded.flags & 1 = 0 THEN excluded.large_mwh
                           ELSE reading_large_mwh(COALESCE(excluded.large_mwh[1], excluded.import_mwh), COALESCE(excluded.large_mwh[2], excluded.export_mwh),
                                                  COALESCE(r.large_mwh[3], excluded.large_mwh[3]), COALESCE(r.large_mwh[4], excluded.large_mwh[4])) END
      WHERE (r.flags & 1 = 1 AND excluded.flags & 1 = 0)
         OR (r.flags = excluded.flags
             AND COALESCE(r.large_mwh[1], r.import_mwh) = COALESCE(excluded.large_mwh[1], excluded.import_mwh)
             AND COALESCE(r.large_mwh[2], r.export_mwh) = COALESCE(excluded.large_mwh[2], excluded.export_mwh)
             AND ((r.large_mwh[3] IS NULL AND excluded.large_mwh[3] IS NOT NULL) OR (r.large_mwh[4] IS NULL AND excluded.large_mwh[4] IS NOT NULL))
             AND (r.large_mwh[3] IS NULL OR excluded.large_mwh[3] IS NULL OR r.large_mwh[3] = excluded.large_mwh[3])
             AND (r.large_mwh[4] IS NULL OR excluded.large_mwh[4] IS NULL OR r.large_mwh[4] = excluded.large_mwh[4]))
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
  -- statement, so it sees rows committed by a concurrent batch that the upsert had to wait for. Reactive
  -- values conflict only when both sides have one and they differ.
  RETURN QUERY
  SELECT o.i, COALESCE(o.outcome,
           (SELECT CASE WHEN COALESCE(s.large_mwh[1], s.import_mwh) = p_import[o.i] AND COALESCE(s.large_mwh[2], s.export_mwh) = p_export[o.i]
                             AND (s.large_mwh[3] IS NULL OR p_reactive_import[o.i] IS NULL OR s.large_mwh[3] = p_reactive_import[o.i])
                             AND (s.large_mwh[4] IS NULL OR p_reactive_export[o.i] IS NULL OR s.large_mwh[4] = p_reactive_export[o.i])
                        THEN 'duplicate' ELSE 'conflicting_duplicate' END
            FROM meters m JOIN meter_readings s ON s.meter_key = m.key
            WHERE m.id = p_meter[o.i]
              AND s.interval_start = timestamptz 'epoch' + p_start_ms[o.i] * interval '1 millisecond'),
           'duplicate')
  FROM unnest(v_idx, v_outcome) AS o(i, outcome)
  WHERE o.outcome IS DISTINCT FROM 'stored';
END
$$;

-- Down Migration
-- One way, as 013: going back means re-applying 013's readings view, rules and ingest_readings (reactive
-- values kept in large_mwh[3:4] are then ignored) after dropping this ingest_readings.
SELECT 1;
