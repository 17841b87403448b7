-- add-column-not-null-without-default: bad.sql
ALTER TABLE accounts ADD COLUMN status text NOT NULL;
