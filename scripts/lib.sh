# Helpers for the set-up scripts: install what is missing from Debian, or say what to install.

die() { echo "error: $*" >&2; exit 1; }

apt_updated=0
apt_install() {
  if [ "$(id -u)" != 0 ]; then
    die "missing Debian package(s): $*; install them with: sudo apt-get install -y $*"
  fi
  if [ "$apt_updated" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    apt_updated=1
  fi
  echo "installing $* from Debian"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# need_command COMMAND PACKAGE: install PACKAGE when COMMAND is not on PATH (or in /usr/sbin).
need_command() {
  command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ] || apt_install "$2"
}

pg_ready() {
  "${PYTHON:-.venv/bin/python}" - "$1" <<'PY' 2>/dev/null
import sys, psycopg
psycopg.connect(sys.argv[1], connect_timeout=2).close()
PY
}
