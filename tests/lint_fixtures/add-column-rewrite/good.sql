-- add-column-rewrite: good.sql
ALTER TABLE orders ADD COLUMN created timestamptz DEFAULT now();
ALTER TABLE orders ADD COLUMN n int DEFAULT 0;
