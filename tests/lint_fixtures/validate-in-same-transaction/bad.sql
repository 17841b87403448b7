-- validate-in-same-transaction: bad.sql
BEGIN;
ALTER TABLE orders ADD CONSTRAINT ck_total CHECK (total >= 0) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT ck_total;
COMMIT;
