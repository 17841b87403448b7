-- rename-column: good.sql
ALTER TABLE accounts ADD COLUMN display_name text;
