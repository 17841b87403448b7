-- truncate: good.sql
CREATE TABLE s2 (id int);
TRUNCATE s2;
