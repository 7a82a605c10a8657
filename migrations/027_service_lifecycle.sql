-- Up Migration
-- Service lifecycle: when an account is in service (move-in, move-out) and when each meter is (installed,
-- removed, exchanged). Billing bills nothing before a service start or after a service end, and prorates
-- the first and last cycles (billing-api/README.md, "Service lifecycle"). Without an explicit start, a
-- meter's service starts as the service window says (creation, or its first reading within the backfill).
CREATE TABLE account_service (
  account_id    text PRIMARY KEY REFERENCES accounts (id),
  service_start timestamptz,
  service_end   timestamptz,
  updated_at    timestamptz NOT NULL DEFAULT now(),
  CHECK (service_end IS NULL OR service_start IS NULL OR service_end > service_start)
);

CREATE TABLE meter_service (
  meter_id      text PRIMARY KEY REFERENCES meters (id),
  service_start timestamptz,
  service_end   timestamptz,
  -- the meter this one replaced in a meter exchange (same account, its service end = this service start)
  replaces      text REFERENCES meters (id),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  CHECK (service_end IS NULL OR service_start IS NULL OR service_end > service_start)
);

-- Every lifecycle change, as it was requested (never updated): what, when it takes effect, who asked.
CREATE TABLE service_events (
  id          bigserial PRIMARY KEY,
  account_id  text NOT NULL REFERENCES accounts (id),
  meter_id    text REFERENCES meters (id),
  event       text NOT NULL CHECK (event IN ('move_in', 'move_out', 'meter_start', 'meter_end', 'meter_exchange')),
  effective   timestamptz NOT NULL,
  detail      jsonb NOT NULL DEFAULT '{}',
  recorded_by text,
  recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX service_events_account_idx ON service_events (account_id, id);

-- Down Migration
DROP TABLE IF EXISTS service_events, meter_service, account_service;
