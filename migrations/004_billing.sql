-- Up Migration
-- Billing: runs, bills (one per account and billing cycle), the meters' part of each bill, and adjustment
-- lines that correct an earlier bill. Bills are immutable: every row of bills, bill_meters and
-- bill_adjustments is written once, by the transaction that closes the cycle, and a trigger refuses
-- UPDATE, DELETE and TRUNCATE. Corrections are new rows on the next bill (bill_adjustments).
-- Instants are timestamptz (UTC); money is numeric (exact), in the bill's currency.

-- A billing run (POST /v1/billing-runs or the scheduled job). The only mutable billing table: it records
-- progress and outcome, never money.
CREATE TABLE billing_runs (
  id            text PRIMARY KEY,
  trigger       text NOT NULL CHECK (trigger IN ('api', 'schedule')),
  as_of         timestamptz NOT NULL,
  -- cycles that ended at or before this instant (as_of minus the grace period) are closed
  cutoff        timestamptz NOT NULL,
  started_at    timestamptz NOT NULL DEFAULT now(),
  finished_at   timestamptz,
  bills_created integer NOT NULL DEFAULT 0,
  skipped       integer NOT NULL DEFAULT 0,
  failures      jsonb NOT NULL DEFAULT '[]'
);

-- One bill per account and billing cycle: the unique constraint is what makes concurrent runs safe.
-- document is the bill exactly as the API serves it; content_hash is the SHA-256 (hex) of its canonical
-- JSON (keys sorted, no whitespace), so any later change to a stored bill is detectable.
CREATE TABLE bills (
  id             text PRIMARY KEY,
  account_id     text NOT NULL REFERENCES accounts (id),
  cycle_start    timestamptz NOT NULL,
  cycle_end      timestamptz NOT NULL,
  billing_run_id text NOT NULL REFERENCES billing_runs (id),
  closed_at      timestamptz NOT NULL,
  currency       text NOT NULL,
  subtotal       numeric NOT NULL,
  taxes          numeric NOT NULL,
  adjustments    numeric NOT NULL,
  total          numeric NOT NULL,
  document       jsonb NOT NULL,
  content_hash   text NOT NULL CHECK (content_hash ~ '^[0-9a-f]{64}$'),
  CONSTRAINT bills_one_per_account_cycle UNIQUE (account_id, cycle_start),
  CHECK (cycle_end > cycle_start)
);

-- Each meter's charges on a bill (the same numbers as the document's meters[]), for the adjustment rule
-- "re-rated minus billed" and for queries across bills.
CREATE TABLE bill_meters (
  bill_id         text NOT NULL REFERENCES bills (id),
  meter_id        text NOT NULL REFERENCES meters (id),
  cycle_start     timestamptz NOT NULL,
  cycle_end       timestamptz NOT NULL,
  subtotal        numeric NOT NULL,
  taxes           numeric NOT NULL,
  total           numeric NOT NULL,
  coverage        jsonb NOT NULL,
  tariff_versions jsonb NOT NULL,
  lines           jsonb NOT NULL,
  warnings        jsonb NOT NULL,
  PRIMARY KEY (bill_id, meter_id)
);
CREATE INDEX bill_meters_meter_idx ON bill_meters (meter_id, cycle_start);

-- An adjustment line on bill_id correcting the charges of meter_id on corrects_bill_id:
-- amount = rerated_total - previously_billed (the original meter total plus earlier adjustments of it).
CREATE TABLE bill_adjustments (
  bill_id           text NOT NULL REFERENCES bills (id),
  corrects_bill_id  text NOT NULL REFERENCES bills (id),
  meter_id          text NOT NULL REFERENCES meters (id),
  period_start      timestamptz NOT NULL,
  period_end        timestamptz NOT NULL,
  previously_billed numeric NOT NULL,
  rerated_subtotal  numeric NOT NULL,
  rerated_taxes     numeric NOT NULL,
  rerated_total     numeric NOT NULL,
  amount            numeric NOT NULL,
  detail            jsonb NOT NULL,
  PRIMARY KEY (bill_id, corrects_bill_id, meter_id),
  CHECK (corrects_bill_id <> bill_id)
);
CREATE INDEX bill_adjustments_corrects_idx ON bill_adjustments (corrects_bill_id, meter_id);

CREATE FUNCTION refuse_bill_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'bills are immutable: % on % refused (corrections go on the next bill as adjustments)', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER bills_immutable BEFORE UPDATE OR DELETE ON bills FOR EACH ROW EXECUTE FUNCTION refuse_bill_change();
CREATE TRIGGER bills_no_truncate BEFORE TRUNCATE ON bills FOR EACH STATEMENT EXECUTE FUNCTION refuse_bill_change();
CREATE TRIGGER bill_meters_immutable BEFORE UPDATE OR DELETE ON bill_meters FOR EACH ROW EXECUTE FUNCTION refuse_bill_change();
CREATE TRIGGER bill_meters_no_truncate BEFORE TRUNCATE ON bill_meters FOR EACH STATEMENT EXECUTE FUNCTION refuse_bill_change();
CREATE TRIGGER bill_adjustments_immutable BEFORE UPDATE OR DELETE ON bill_adjustments FOR EACH ROW EXECUTE FUNCTION refuse_bill_change();
CREATE TRIGGER bill_adjustments_no_truncate BEFORE TRUNCATE ON bill_adjustments FOR EACH STATEMENT EXECUTE FUNCTION refuse_bill_change();

-- Down Migration
DROP TABLE IF EXISTS bill_adjustments, bill_meters, bills, billing_runs;
DROP FUNCTION IF EXISTS refuse_bill_change();
