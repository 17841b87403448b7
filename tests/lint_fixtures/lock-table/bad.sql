-- lock-table: bad.sql
BEGIN;
LOCK TABLE orders;
COMMIT;
