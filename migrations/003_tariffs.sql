-- Up Migration
-- Tariffs are stored as versioned documents (the native tariff document; URDB imports are converted to it
-- and keep their source). A version is immutable once stored: history is never repriced.
CREATE TABLE tariffs (
  id             text NOT NULL,
  version        integer NOT NULL,
  effective_from timestamptz,
  source         text NOT NULL DEFAULT 'native' CHECK (source IN ('native', 'urdb')),
  document       jsonb NOT NULL,
  source_document jsonb,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (id, version)
);

-- Which tariff rates a meter from when (an instant, UTC). The assignment in force for an interval is the
-- latest effective_from <= intervalStart.
CREATE TABLE meter_tariffs (
  meter_id       text NOT NULL REFERENCES meters (id),
  effective_from timestamptz NOT NULL,
  tariff_id      text NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (meter_id, effective_from)
);

-- Down Migration
DROP TABLE IF EXISTS meter_tariffs, tariffs;
