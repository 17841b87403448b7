-- set-table-persistence: bad.sql
ALTER TABLE events SET LOGGED;
