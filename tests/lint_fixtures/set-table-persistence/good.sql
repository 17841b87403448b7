-- set-table-persistence: good.sql
CREATE UNLOGGED TABLE e2 (id int);
