#!/usr/bin/env bash
# Creates the role the API connects as and the database it owns. The postgres image runs this
# once, as the superuser, when its data directory is empty.
#
# The role may log in and owns its database (so migrations can create tables in its public
# schema), and nothing more: no SUPERUSER, CREATEDB, CREATEROLE or REPLICATION. Its password is
# read from the file FESTAPI_DB_PASSWORD_FILE names.
set -euo pipefail

role=${FESTAPI_DB_USER:-festapi}
database=${FESTAPI_DB_NAME:-festapi}
password_file=${FESTAPI_DB_PASSWORD_FILE:?set FESTAPI_DB_PASSWORD_FILE to the file holding the password of the API role}
password=$(<"$password_file")

# psql quotes the values itself (:"identifier" and :'literal'), so no value can inject SQL.
psql --set ON_ERROR_STOP=1 --no-psqlrc --quiet \
  --username "${POSTGRES_USER:-postgres}" --dbname postgres \
  --set role="$role" --set database="$database" --set password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password'
  NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
CREATE DATABASE :"database" OWNER :"role";
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"database" TO :"role";
SQL
echo "created role ${role} and its database ${database}"
