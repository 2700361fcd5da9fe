#!/bin/sh
# set-ids.sh USER UID GID: make USER (created when missing) and its group have exactly these ids, as
# in the official image, moving any other user or group that holds them out of the way first.
set -eu
user=$1 uid=$2 gid=$3
free_id() { id=900; while getent passwd "$id" >/dev/null || getent group "$id" >/dev/null; do id=$((id + 1)); done; echo "$id"; }
holder=$(getent group "$gid" | cut -d: -f1 || true)
if [ -n "$holder" ] && [ "$holder" != "$user" ]; then groupmod -g "$(free_id)" "$holder"; fi
holder=$(getent passwd "$uid" | cut -d: -f1 || true)
if [ -n "$holder" ] && [ "$holder" != "$user" ]; then usermod -u "$(free_id)" "$holder"; fi
if getent group "$user" >/dev/null; then
  old_gid=$(getent group "$user" | cut -d: -f3); groupmod -g "$gid" "$user"
else
  old_gid=; groupadd -g "$gid" "$user"
fi
if getent passwd "$user" >/dev/null; then
  old_uid=$(id -u "$user"); usermod -u "$uid" -g "$gid" "$user"
else
  old_uid=; useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin -u "$uid" -g "$gid" "$user"
fi
# Files the packages gave the old ids follow the user.
[ -z "$old_uid" ] || [ "$old_uid" = "$uid" ] || find / -xdev -uid "$old_uid" -exec chown -h "$uid" {} +
[ -z "$old_gid" ] || [ "$old_gid" = "$gid" ] || find / -xdev -gid "$old_gid" -exec chgrp -h "$gid" {} +
