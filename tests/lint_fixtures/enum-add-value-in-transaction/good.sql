-- enum-add-value-in-transaction: good.sql
ALTER TYPE order_state ADD VALUE 'refunded';
