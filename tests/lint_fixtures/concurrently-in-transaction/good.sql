-- concurrently-in-transaction: good.sql
CREATE INDEX CONCURRENTLY ix_a ON t (a);
REINDEX INDEX CONCURRENTLY ix_a;
