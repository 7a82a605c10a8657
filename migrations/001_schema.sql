-- Up Migration
-- Core schema: accounts, devices (meters and concentrators share one id namespace: the MQTT username),
-- concentrator assignments, API tokens, interval readings, quarantine.
-- Instants are timestamptz (UTC); energy is integer milliwatt-hours (exact: readings carry <= 3 decimals of Wh).

CREATE TABLE accounts (
  id          text PRIMARY KEY,
  name        text NOT NULL,
  timezone    text NOT NULL,
  billing_day smallint NOT NULL CHECK (billing_day BETWEEN 1 AND 31),
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE devices (
  id          text PRIMARY KEY,
  kind        text NOT NULL CHECK (kind IN ('meter', 'concentrator')),
  secret_hash text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE meters (
  id               text PRIMARY KEY REFERENCES devices (id),
  account_id       text NOT NULL REFERENCES accounts (id),
  timezone         text NOT NULL,
  interval_seconds integer NOT NULL CHECK (interval_seconds IN (300, 600, 900, 1800, 3600)),
  max_power_kw     numeric(12, 3) CHECK (max_power_kw > 0),
  created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX meters_account_idx ON meters (account_id);

CREATE TABLE concentrators (
  id         text PRIMARY KEY REFERENCES devices (id),
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE concentrator_meters (
  concentrator_id text NOT NULL REFERENCES concentrators (id) ON DELETE CASCADE,
  meter_id        text NOT NULL REFERENCES meters (id) ON DELETE CASCADE,
  PRIMARY KEY (concentrator_id, meter_id)
);
CREATE INDEX concentrator_meters_meter_idx ON concentrator_meters (meter_id);

CREATE TABLE api_tokens (
  id         text PRIMARY KEY,
  token_hash bytea NOT NULL UNIQUE,
  role       text NOT NULL CHECK (role IN ('admin', 'reader', 'customer')),
  account_id text REFERENCES accounts (id),
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz,
  CHECK ((role = 'customer') = (account_id IS NOT NULL))
);

-- One row per (meter, interval start). received_at is when the row (or its latest replacement) committed.
CREATE TABLE readings (
  meter_id         text NOT NULL,
  interval_start   timestamptz NOT NULL,
  interval_seconds integer NOT NULL,
  import_mwh       bigint NOT NULL CHECK (import_mwh >= 0),
  export_mwh       bigint NOT NULL CHECK (export_mwh >= 0),
  quality          text NOT NULL CHECK (quality IN ('actual', 'estimated')),
  received_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (meter_id, interval_start)
);

-- Everything the gateway could not accept, with the raw input (or a bounded prefix plus size and hash).
CREATE TABLE quarantine (
  id             bigserial PRIMARY KEY,
  received_at    timestamptz NOT NULL DEFAULT now(),
  device_id      text,
  topic          text,
  reason         text NOT NULL,
  detail         text,
  meter_id       text,
  interval_start timestamptz,
  raw            bytea NOT NULL,
  raw_size       integer NOT NULL,
  raw_sha256     bytea NOT NULL,
  raw_truncated  boolean NOT NULL DEFAULT false
);
CREATE INDEX quarantine_received_idx ON quarantine (received_at);
CREATE INDEX quarantine_device_idx ON quarantine (device_id, received_at);
CREATE INDEX quarantine_reason_idx ON quarantine (reason, received_at);

-- Readings become a hypertable when TimescaleDB was created in this database (the migrate step decides,
-- see common/migrate.ts); the same queries serve both modes.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
    -- 7-day chunks: a month of one meter touches 5-6 chunks (planning stays cheap) and a recent chunk's
    -- index stays in memory up to a few hundred thousand meters; operators may set_chunk_time_interval().
    -- No default (interval_start DESC) index: every query here names the meter, which the key serves, and
    -- a second index would be maintained on every insert for nothing.
    PERFORM create_hypertable('readings', 'interval_start', chunk_time_interval => interval '7 days',
                              create_default_indexes => false);
  END IF;
END
$$;

-- Device changes are announced so that every gateway process drops its cached credentials at once.
CREATE FUNCTION notify_device_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('device_changed', COALESCE(NEW.id, OLD.id));
  RETURN NULL;
END
$$;
CREATE TRIGGER devices_changed AFTER INSERT OR UPDATE OR DELETE ON devices
  FOR EACH ROW EXECUTE FUNCTION notify_device_changed();

-- Down Migration
DROP TRIGGER IF EXISTS devices_changed ON devices;
DROP FUNCTION IF EXISTS notify_device_changed();
DROP TABLE IF EXISTS quarantine, readings, api_tokens, concentrator_meters, concentrators, meters, devices, accounts;
