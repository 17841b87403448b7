-- drop-table: bad.sql
DROP TABLE legacy;
