-- backfill-in-schema-transaction: good.sql
ALTER TABLE accounts ADD COLUMN status text;
UPDATE accounts SET status = 'x' WHERE id < 10;
