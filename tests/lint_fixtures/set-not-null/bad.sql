-- set-not-null: bad.sql
ALTER TABLE accounts ALTER COLUMN status SET NOT NULL;
