-- missing-lock-timeout: bad.sql
ALTER TABLE accounts ADD COLUMN note text;
