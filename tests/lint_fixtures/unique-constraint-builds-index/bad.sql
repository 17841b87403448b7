-- unique-constraint-builds-index: bad.sql
ALTER TABLE users ADD CONSTRAINT pk_users PRIMARY KEY (id);
