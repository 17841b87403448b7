-- add-column-not-null-without-default: good.sql
ALTER TABLE accounts ADD COLUMN status text NOT NULL DEFAULT 'active';
