-- require-concurrent-index: good.sql
CREATE INDEX CONCURRENTLY ix_orders_account ON orders (account_id);
CREATE TABLE fresh (id bigint);
CREATE INDEX ix_fresh ON fresh (id);
