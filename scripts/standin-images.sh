#!/usr/bin/env bash
# Stand-in base images for machines that cannot pull the official ones (test fixtures, never
# published; see tests/containers/standins/README.md). For each image named (default: all five):
# use it when present, else pull it, else build it from Debian packages with debootstrap and tag it
# with the official name. Root filesystems and .deb files are cached in $STANDIN_CACHE.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
definitions="$here/../tests/containers/standins"
cache=${STANDIN_CACHE:-/var/cache/silent-auth/standins}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm

# official name -> "root filesystem set:Containerfile stem"
declare -A STANDINS=(
  [docker.io/library/python:3.11-slim]=python:python
  [docker.io/library/redis:7-alpine]=services:redis
  [docker.io/library/postgres:16-alpine]=services:postgres
  [docker.io/nginxinc/nginx-unprivileged:1.27-alpine]=services:nginx
  [docker.io/nginx/nginx-prometheus-exporter:1.4.2]=services:nginx-exporter
)

hash_of() { cat "$@" | sha256sum | cut -c1-16; }

# rootfs SET: prints the name of the imported root filesystem image, making it when missing.
rootfs() {
  local set=$1 key tarball image work packages
  key=$(hash_of "$definitions/$set.packages" "$0")
  image=localhost/silent-auth-standin-rootfs-$set:$key
  if podman image exists "$image"; then echo "$image"; return; fi
  tarball=$cache/$set-$key.tar
  if [ ! -s "$tarball" ]; then
    mkdir -p "$cache/debs"
    packages=$(grep -v '^#' "$definitions/$set.packages" | paste -sd, -)
    work=$(mktemp -d "$cache/build-$set.XXXXXX")
    echo "standins: debootstrap $suite ($set: $packages)" >&2
    if ! debootstrap --variant=minbase --cache-dir="$cache/debs" --include="$packages" \
        "$suite" "$work" "$mirror" >"$work.log" 2>&1; then
      tail -20 "$work.log" >&2; rm -rf "$work"; die "debootstrap of $set failed (log: $work.log)"
    fi
    # What no image carries: documentation, manuals, translations, apt's lists and caches.
    rm -rf "$work"/usr/share/doc/* "$work"/usr/share/man/* "$work"/usr/share/info/* \
      "$work"/usr/share/locale/* "$work"/var/lib/apt/lists/* "$work"/var/cache/apt/* \
      "$work"/var/cache/debconf/*-old "$work"/var/log/*.log
    tar -C "$work" --numeric-owner -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$work" "$work.log"
  fi
  podman import --quiet "$tarball" "$image" >/dev/null
  echo "$image"
}

# A name as the compose file writes it (redis:7-alpine) to the full name podman gives it.
full_name() {
  case $1 in
    */*/*) echo "$1" ;;
    */*) echo "docker.io/$1" ;;
    *) echo "docker.io/library/$1" ;;
  esac
}

standin() {
  local name set stem key base
  name=$(full_name "$1")
  [ -n "${STANDINS[$name]:-}" ] || die "no stand-in for $name (known: ${!STANDINS[*]})"
  set=${STANDINS[$name]%%:*} stem=${STANDINS[$name]#*:}
  local inputs=("$definitions/$set.packages" "$definitions/$stem.Containerfile" "$definitions"/*.sh "$definitions"/*.conf)
  key=$(hash_of "${inputs[@]}")
  if podman image exists "$name"; then
    local label
    label=$(podman image inspect --format '{{ index .Labels "io.silent-auth.standin.key" }}' "$name")
    # An official image (no key), or this very stand-in: nothing to do.
    if [ "$label" = "" ] || [ "$label" = "<no value>" ] || [ "$label" = "$key" ]; then return; fi
    echo "standins: $name is an older stand-in; rebuilding" >&2
  elif podman pull --quiet "$name" >/dev/null 2>&1; then
    echo "standins: pulled $name" >&2; return
  fi
  base=$(rootfs "$set")
  echo "standins: building $name from $base" >&2
  podman build --quiet --network none --build-arg ROOTFS="$base" --label io.silent-auth.standin.key="$key" \
    -t "$name" -f "$definitions/$stem.Containerfile" "$definitions" >/dev/null
}

[ $# -gt 0 ] || set -- "${!STANDINS[@]}"
for name in "$@"; do standin "$name"; done
