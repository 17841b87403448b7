-- vacuum-full: good.sql
VACUUM orders;
