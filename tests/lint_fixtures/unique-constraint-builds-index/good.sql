-- unique-constraint-builds-index: good.sql
ALTER TABLE users ADD CONSTRAINT uq_email UNIQUE USING INDEX ux_email;
