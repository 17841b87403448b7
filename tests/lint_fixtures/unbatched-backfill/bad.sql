-- unbatched-backfill: bad.sql
DELETE FROM sessions;
