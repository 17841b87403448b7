-- drop-column: good.sql
-- deployer: ignore[drop-column] contract phase: no running version reads it
ALTER TABLE accounts DROP COLUMN name;
