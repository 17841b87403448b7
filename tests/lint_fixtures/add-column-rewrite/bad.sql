-- add-column-rewrite: bad.sql
ALTER TABLE orders ADD COLUMN seq bigserial;
ALTER TABLE orders ADD COLUMN t timestamptz DEFAULT clock_timestamp();
ALTER TABLE orders ADD COLUMN n int GENERATED ALWAYS AS IDENTITY;
ALTER TABLE orders ADD COLUMN total2 numeric GENERATED ALWAYS AS (total * 2) STORED;
