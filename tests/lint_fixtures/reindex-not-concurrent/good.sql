-- reindex-not-concurrent: good.sql
REINDEX INDEX CONCURRENTLY ix_orders_account;
