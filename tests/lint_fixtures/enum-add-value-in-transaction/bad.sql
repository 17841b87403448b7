-- enum-add-value-in-transaction: bad.sql
BEGIN;
ALTER TYPE order_state ADD VALUE 'refunded';
COMMIT;
