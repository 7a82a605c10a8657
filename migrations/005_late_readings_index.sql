-- Up Migration
-- Late readings: rows committed more than an hour after their interval started. A billing close looks for
-- readings committed since the account's previous close that belong to an already closed cycle (they
-- become adjustment lines); those are all late by at least the grace period, so this partial index holds
-- them and little else. On-time rows are never indexed here, so ingestion pays almost nothing for it.
-- (timestamptz - timestamptz is immutable, as a partial index predicate must be.)
CREATE INDEX readings_late_idx ON readings (meter_id, received_at)
  WHERE received_at - interval_start > interval '1 hour';

-- Down Migration
DROP INDEX IF EXISTS readings_late_idx;
