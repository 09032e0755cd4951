DROP TABLE auth_flows;
ALTER TABLE users DROP COLUMN name_set_by_user, DROP COLUMN picture_set_by_user;
DROP TABLE identities;
