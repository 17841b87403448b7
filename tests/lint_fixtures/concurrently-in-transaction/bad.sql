-- concurrently-in-transaction: bad.sql
BEGIN;
CREATE INDEX CONCURRENTLY ix_a ON t (a);
COMMIT;
