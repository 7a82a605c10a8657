-- Up Migration
-- When each device last connected to (and disconnected from) the embedded gateway: one row per device,
-- written by the gateway in batches (gateway/embedded/connection-log.ts), read by GET /v1/meters and
-- GET /v1/concentrators to find silent devices. A broker run outside the gateway (MQTT_MODE=external)
-- records nothing here.
CREATE TABLE device_connections (
  device_id         text PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
  connected_at      timestamptz,
  disconnected_at   timestamptz
);

-- Down Migration
DROP TABLE IF EXISTS device_connections;
