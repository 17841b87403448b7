-- set-not-null: good.sql
CREATE TABLE fresh (a int);
ALTER TABLE fresh ALTER COLUMN a SET NOT NULL;
