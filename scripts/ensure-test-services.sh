#!/usr/bin/env bash
# Make sure what the tests talk to exists: redis-server (tests start their own, alone, as a Cluster
# or watched by Sentinel), redis-cli (it creates the Cluster), wrk (tests/bench runs the bench's
# scripts), Prometheus with promtool and nginx's exporter (tests/observability) and a reachable
# PostgreSQL (TEST_POSTGRES_URL). Installs from Debian when missing and running as root.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"

need_command redis-server redis-server
need_command redis-cli redis-tools
need_command nginx nginx-light
need_command prometheus-nginx-exporter prometheus-nginx-exporter
need_command promtool prometheus
need_command docker-compose docker-compose
need_command chromium chromium
need_command wrk wrk
# tests/containers: podman (and what it needs here), set up by the script `make image` uses.
CONTAINER_ENGINE=podman "$here/ensure-containers.sh" >/dev/null

pg_url=${TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/test}
if ! pg_ready "$pg_url"; then
  if ! compgen -G "/etc/postgresql/*/main" >/dev/null; then
    need_command pg_ctlcluster postgresql
  fi
  echo "starting PostgreSQL"
  for version in $(ls /etc/postgresql); do
    pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || true
  done
  for _ in $(seq 50); do pg_ready "$pg_url" && break; sleep 0.2; done
  if ! pg_ready "$pg_url"; then
    # A fresh Debian cluster trusts local socket users only: create what the tests expect.
    su postgres -c "psql -qc \"ALTER USER postgres PASSWORD NULL\"" >/dev/null 2>&1 || true
    su postgres -c "createdb test" >/dev/null 2>&1 || true
    for conf in /etc/postgresql/*/main/pg_hba.conf; do
      grep -q "silent-auth tests" "$conf" || sed -i '1i host all all 127.0.0.1/32 trust # silent-auth tests' "$conf"
    done
    for version in $(ls /etc/postgresql); do pg_ctlcluster --skip-systemctl-redirect "$version" main reload || true; done
    sleep 1
  fi
  pg_ready "$pg_url" || die "PostgreSQL is not reachable at $pg_url (set TEST_POSTGRES_URL)"
fi
echo "test services ready: redis-server $(redis-server --version | awk '{print $3}'), PostgreSQL at $pg_url"
