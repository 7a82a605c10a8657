-- Up Migration
-- Energy tier limits count the cumulative import of the whole billing window across all periods unless a
-- tariff says "tierScope": "period". Versions stored before that rule counted each period's own kWh: they
-- state it now, so no stored version changes meaning and history is never repriced.
UPDATE tariffs
SET document = jsonb_set(document, '{energy,tierScope}', '"period"')
WHERE document ? 'energy' AND jsonb_typeof(document->'energy') = 'object' AND NOT (document->'energy' ? 'tierScope');

-- Down Migration
-- Nothing to undo: a stored version that states "period" means what it meant before this migration.
SELECT 1;
