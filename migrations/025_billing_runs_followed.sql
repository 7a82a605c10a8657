-- Up Migration
-- Billing runs people can follow: a run is recorded as it starts (state 'running') and its counts grow as
-- each batch of accounts commits; its failures are rows of billing_run_failures (account, cycle, reason),
-- written as they happen. A run may close "the cycles ending in" a calendar month (period 'YYYY-MM', in
-- each account's zone) instead of asOf minus the grace period. Trigger 'void' marks the run that a void's
-- re-bill belongs to.
ALTER TABLE billing_runs
  ADD COLUMN state          text NOT NULL DEFAULT 'finished' CHECK (state IN ('running', 'finished', 'failed')),
  ADD COLUMN period         text CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
  ADD COLUMN grace_days     integer,
  ADD COLUMN accounts_total integer,
  ADD COLUMN accounts_done  integer NOT NULL DEFAULT 0,
  ADD COLUMN error          text;
ALTER TABLE billing_runs ALTER COLUMN state SET DEFAULT 'running';
ALTER TABLE billing_runs DROP CONSTRAINT billing_runs_trigger_check;
ALTER TABLE billing_runs ADD CONSTRAINT billing_runs_trigger_check CHECK (trigger IN ('api', 'schedule', 'void'));
CREATE INDEX billing_runs_started_idx ON billing_runs (started_at DESC, id DESC);

-- One row per account a run could not close: the cycle it tried (null when it failed before choosing one)
-- and why. The account stays open; the next run retries it.
CREATE TABLE billing_run_failures (
  run_id      text NOT NULL REFERENCES billing_runs (id),
  account_id  text NOT NULL,
  cycle_start timestamptz,
  cycle_end   timestamptz,
  code        text NOT NULL,
  message     text NOT NULL,
  details     jsonb NOT NULL DEFAULT '[]',
  recorded_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (run_id, account_id)
);
CREATE INDEX billing_run_failures_account_idx ON billing_run_failures (account_id, recorded_at);

INSERT INTO billing_run_failures (run_id, account_id, cycle_start, cycle_end, code, message, details, recorded_at)
SELECT r.id, f->>'accountId', (f->'cycle'->>'from')::timestamptz, (f->'cycle'->>'to')::timestamptz,
       COALESCE(f->>'code', 'internal'), COALESCE(f->>'message', ''), COALESCE(f->'details', '[]'), COALESCE(r.finished_at, r.started_at)
FROM billing_runs r CROSS JOIN LATERAL jsonb_array_elements(r.failures) f
WHERE f ? 'accountId'
ON CONFLICT DO NOTHING;

-- Down Migration
DROP TABLE IF EXISTS billing_run_failures;
DROP INDEX IF EXISTS billing_runs_started_idx;
ALTER TABLE billing_runs DROP CONSTRAINT billing_runs_trigger_check;
ALTER TABLE billing_runs ADD CONSTRAINT billing_runs_trigger_check CHECK (trigger IN ('api', 'schedule'));
ALTER TABLE billing_runs DROP COLUMN state, DROP COLUMN period, DROP COLUMN grace_days, DROP COLUMN accounts_total,
  DROP COLUMN accounts_done, DROP COLUMN error;
