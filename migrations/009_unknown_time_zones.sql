-- Up Migration
-- Reports accounts, meters and tariff versions whose time zone PostgreSQL does not know (pg_timezone_names).
-- Such a zone makes `AT TIME ZONE` raise: a meter with one cannot store readings (its alignment check fails)
-- and its account cannot be billed. Provisioning refuses these zones (common/timezones.ts); rows created
-- before that rule are only reported here, one WARNING each, so the operator can correct them, for example
--   UPDATE meters SET timezone = 'America/Los_Angeles' WHERE timezone = 'US/Pacific-New';
-- The migration never fails because of them.
DO $$
DECLARE
  r record;
  n integer := 0;
BEGIN
  FOR r IN
    SELECT 'account' AS kind, a.id, a.timezone AS zone FROM accounts a
      WHERE NOT EXISTS (SELECT 1 FROM pg_timezone_names z WHERE z.name = a.timezone)
    UNION ALL
    SELECT 'meter', m.id, m.timezone FROM meters m
      WHERE NOT EXISTS (SELECT 1 FROM pg_timezone_names z WHERE z.name = m.timezone)
    UNION ALL
    SELECT 'tariff', t.id || ' version ' || t.version, t.document->>'timeZone' FROM tariffs t
      WHERE t.document ? 'timeZone'
        AND NOT EXISTS (SELECT 1 FROM pg_timezone_names z WHERE z.name = t.document->>'timeZone')
    ORDER BY 1, 2
  LOOP
    n := n + 1;
    RAISE WARNING '% "%" has time zone "%", which PostgreSQL does not know: correct it to a current IANA name', r.kind, r.id, r.zone;
  END LOOP;
  IF n > 0 THEN
    RAISE WARNING '% row(s) with time zones PostgreSQL does not know (listed above)', n;
  END IF;
END
$$;

-- Down Migration
-- Nothing to undo: the up migration only reports.
SELECT 1;
