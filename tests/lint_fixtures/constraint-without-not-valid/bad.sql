-- constraint-without-not-valid: bad.sql
ALTER TABLE orders ADD CONSTRAINT fk_o_a FOREIGN KEY (account_id) REFERENCES accounts (id);
ALTER TABLE orders ADD COLUMN owner_id bigint REFERENCES accounts (id);
