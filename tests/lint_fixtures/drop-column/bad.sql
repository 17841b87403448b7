-- drop-column: bad.sql
ALTER TABLE accounts DROP COLUMN name;
