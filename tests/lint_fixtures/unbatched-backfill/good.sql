-- unbatched-backfill: good.sql
DELETE FROM sessions WHERE expires < now();
