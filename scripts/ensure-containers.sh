#!/usr/bin/env bash
# A container engine for `make image` and tests/containers. Docker when its daemon answers; else
# podman, installed from Debian when missing (with runc, netavark and aardvark-dns for named
# networks, iptables, which netavark runs to set up a network's firewall rules and without which
# every container on one fails with "netavark: No such file or directory", and debootstrap for the
# stand-in base images), set up for these machines by a drop-in
# containers.conf: no default rlimits (the sandbox refuses to set them), runc (crun refuses the
# hybrid cgroup layout) and netavark (container names resolve on compose networks).
# Prints the engine's name on its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"

if [ -z "${CONTAINER_ENGINE:-}" ] && command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  echo docker
  exit 0
fi
missing=()
for package in podman runc netavark aardvark-dns iptables debootstrap; do
  dpkg-query -W -f '${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} = 0 ] || apt_install "${missing[@]}" >&2
conf=/etc/containers/containers.conf.d/50-silent-auth.conf
wanted='# Written by silent-auth scripts/ensure-containers.sh: what podman needs on these machines.
[containers]
default_ulimits = []

[engine]
runtime = "runc"

[network]
network_backend = "netavark"'
if [ "$(cat "$conf" 2>/dev/null)" != "$wanted" ]; then
  [ "$(id -u)" = 0 ] || die "podman needs $conf (run this script as root once)"
  mkdir -p "$(dirname "$conf")"
  printf '%s\n' "$wanted" >"$conf"
  echo "wrote $conf" >&2
fi
echo podman
