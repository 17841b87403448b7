-- validate-in-same-transaction: good.sql
BEGIN;
ALTER TABLE orders ADD CONSTRAINT ck_total CHECK (total >= 0) NOT VALID;
COMMIT;
BEGIN;
ALTER TABLE orders VALIDATE CONSTRAINT ck_total;
COMMIT;
