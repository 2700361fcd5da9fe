#!/bin/sh
# One database and one role per service, so no service can read another's tables.
set -eu
for service in auth profile board; do
  password=$(eval "echo \${$(echo "$service" | tr a-z A-Z)_DB_PASSWORD}")
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" <<SQL
CREATE ROLE $service LOGIN PASSWORD '$password';
CREATE DATABASE $service OWNER $service;
REVOKE ALL ON DATABASE $service FROM PUBLIC;
SQL
done
