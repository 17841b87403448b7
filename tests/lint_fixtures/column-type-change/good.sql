-- column-type-change: good.sql
CREATE TABLE fresh (a int);
ALTER TABLE fresh ALTER COLUMN a TYPE bigint;
