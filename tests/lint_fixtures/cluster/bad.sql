-- cluster: bad.sql
CLUSTER orders USING ix_orders_account;
