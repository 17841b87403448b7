-- drop-table: good.sql
DROP INDEX CONCURRENTLY ix_legacy;
