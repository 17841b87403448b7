-- require-concurrent-index: bad.sql
CREATE INDEX ix_orders_account ON orders (account_id);
DROP INDEX ix_old;
