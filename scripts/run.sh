#!/usr/bin/env bash
# `make run`: set up what is missing, then run the whole stack as local processes under honcho.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

need_command nginx nginx-light
need_command prometheus-nginx-exporter prometheus-nginx-exporter
[ -n "${REDIS_URL:-}" ] || need_command redis-server redis-server
make --no-print-directory install >/dev/null
exec .venv/bin/python scripts/run_stack.py "$@"
