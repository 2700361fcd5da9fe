#!/usr/bin/env bash
# `make image`: build silent-auth-services:latest with docker or podman, whichever the machine has.
# Where python:3.11-slim cannot be pulled, a stand-in is built first (scripts/standin-images.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
engine=$(scripts/ensure-containers.sh | tail -1)
tag=${IMAGE:-silent-auth-services:latest}
options=()
# pip inside the build trusts what the host trusts (a TLS-inspecting proxy's CA, say).
bundle=${CA_BUNDLE_FILE:-/etc/ssl/certs/ca-certificates.crt}
if [ -r "$bundle" ]; then
  options+=(--volume "$bundle:/etc/ssl/host-ca-bundle.crt:ro" --build-arg CA_BUNDLE=/etc/ssl/host-ca-bundle.crt)
fi
if [ "$engine" = podman ]; then
  scripts/standin-images.sh docker.io/library/python:3.11-slim
  options+=(--network host)
fi
echo "building $tag with $engine"
"$engine" build "${options[@]}" -t "$tag" .
"$engine" image inspect --format '{{.Size}}' "$tag" | awk -v tag="$tag" '{ printf "%s: %.1f MB\n", tag, $1 / 1e6 }'
