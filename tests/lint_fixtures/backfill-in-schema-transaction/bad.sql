-- backfill-in-schema-transaction: bad.sql
BEGIN;
ALTER TABLE accounts ADD COLUMN status text;
UPDATE accounts SET status = 'x' WHERE id < 10;
COMMIT;
