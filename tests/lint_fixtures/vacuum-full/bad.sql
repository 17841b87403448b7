-- vacuum-full: bad.sql
VACUUM FULL orders;
