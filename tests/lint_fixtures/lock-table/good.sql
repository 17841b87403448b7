-- lock-table: good.sql
SELECT 1;
