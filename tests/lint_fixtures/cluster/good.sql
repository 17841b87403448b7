-- cluster: good.sql
ANALYZE orders;
