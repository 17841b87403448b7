-- truncate: bad.sql
TRUNCATE sessions;
