-- rename-table: bad.sql
ALTER TABLE accounts RENAME TO customers;
