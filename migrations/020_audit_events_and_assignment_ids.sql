-- Up Migration
-- Corrections with a trail. Every change made through the API to what is provisioned (accounts, meters,
-- tariff assignments, concentrators, device secrets, tokens) is one row of audit_events, written in the
-- transaction of the change: who (the API token's id), what (action, subject), the subject's state before
-- and after, when. Rows are only inserted (a trigger refuses UPDATE, DELETE and TRUNCATE).
CREATE TABLE audit_events (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at           timestamptz NOT NULL DEFAULT now(),
  actor        text NOT NULL,
  action       text NOT NULL,
  subject_type text NOT NULL,
  subject_id   text NOT NULL,
  -- the account the subject belongs to, for GET /v1/accounts/{id}/events (NULL: installation-wide, e.g. a reader token)
  account_id   text,
  before       jsonb,
  after        jsonb
);
CREATE INDEX audit_events_account_idx ON audit_events (account_id, id) WHERE account_id IS NOT NULL;
CREATE INDEX audit_events_subject_idx ON audit_events (subject_type, subject_id, id);

CREATE FUNCTION refuse_audit_event_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit events are append-only: % refused', TG_OP USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse_audit_event_change();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events FOR EACH STATEMENT EXECUTE FUNCTION refuse_audit_event_change();

-- A tariff assignment is a resource of its own (PATCH and DELETE /v1/meters/{id}/tariff-assignments/{assignmentId}).
ALTER TABLE meter_tariffs ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY;
CREATE UNIQUE INDEX meter_tariffs_id_idx ON meter_tariffs (id);

-- Bills across accounts in the order they were closed (GET /v1/bills), paged by (closed_at, id).
CREATE INDEX bills_closed_idx ON bills (closed_at, id);

-- Down Migration
DROP INDEX IF EXISTS bills_closed_idx;
DROP INDEX IF EXISTS meter_tariffs_id_idx;
ALTER TABLE meter_tariffs DROP COLUMN IF EXISTS id;
DROP TABLE IF EXISTS audit_events;
DROP FUNCTION IF EXISTS refuse_audit_event_change();
