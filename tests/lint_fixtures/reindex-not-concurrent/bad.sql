-- reindex-not-concurrent: bad.sql
REINDEX INDEX ix_orders_account;
