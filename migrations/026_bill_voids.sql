-- Up Migration
-- Void, credit and re-issue. A closed bill never changes: voiding it adds two documents to `bills`, in one
-- transaction: a credit note (kind 'credit_note', `reverses` = the voided bill) and a re-bill of the same
-- cycle (kind 'bill', revision + 1, `supersedes` = the voided bill). Each names the other in its hashed
-- document. A bill is current while no bill supersedes it; a bill is voided at most once (the unique
-- constraints on supersedes and reverses). One bill per account, cycle, kind and revision: concurrent
-- runs still create each regular bill (revision 0) once.
ALTER TABLE bills
  ADD COLUMN kind       text NOT NULL DEFAULT 'bill' CHECK (kind IN ('bill', 'credit_note')),
  ADD COLUMN revision   integer NOT NULL DEFAULT 0 CHECK (revision >= 0),
  ADD COLUMN supersedes text UNIQUE REFERENCES bills (id),
  ADD COLUMN reverses   text UNIQUE REFERENCES bills (id),
  ADD CONSTRAINT bills_kind_links CHECK (
    (kind = 'credit_note' AND reverses IS NOT NULL AND supersedes IS NULL)
    OR (kind = 'bill' AND reverses IS NULL AND (supersedes IS NULL) = (revision = 0)));
ALTER TABLE bills DROP CONSTRAINT bills_one_per_account_cycle;
ALTER TABLE bills ADD CONSTRAINT bills_one_per_account_cycle UNIQUE (account_id, cycle_start, kind, revision);

-- Down Migration
ALTER TABLE bills DROP CONSTRAINT bills_one_per_account_cycle;
ALTER TABLE bills DROP CONSTRAINT bills_kind_links;
ALTER TABLE bills DROP COLUMN kind, DROP COLUMN revision, DROP COLUMN supersedes, DROP COLUMN reverses;
ALTER TABLE bills ADD CONSTRAINT bills_one_per_account_cycle UNIQUE (account_id, cycle_start);
