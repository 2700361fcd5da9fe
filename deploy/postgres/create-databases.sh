#!/bin/sh
# One database and one role per service, so no service can read another's tables: a role for each
# <service>-db-password file the `secrets` step wrote (SECRETS_DIR, /run/secrets). psql reads the
# password from the file itself, so it is on no command line and in no SQL text.
set -eu
secrets_dir=${SECRETS_DIR:-/run/secrets}
for file in "$secrets_dir"/*-db-password; do
  [ -r "$file" ] || { echo "create-databases: no readable *-db-password file in $secrets_dir" >&2; exit 1; }
  service=$(basename "$file" -db-password)
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --set service="$service" --set password_file="$file" <<'SQL'
\set password `cat :'password_file'`
CREATE ROLE :"service" LOGIN PASSWORD :'password';
CREATE DATABASE :"service" OWNER :"service";
REVOKE ALL ON DATABASE :"service" FROM PUBLIC;
SQL
done
