-- column-type-change: bad.sql
ALTER TABLE orders ALTER COLUMN total TYPE bigint;
