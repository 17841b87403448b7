-- rename-table: good.sql
CREATE VIEW customers AS SELECT * FROM accounts;
