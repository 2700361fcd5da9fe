#!/bin/sh
# What nginx-unprivileged's /docker-entrypoint.sh and its 20-envsubst-on-templates.sh do: each
# /etc/nginx/templates/NAME.template becomes /etc/nginx/conf.d/NAME with only the variables set in
# the environment substituted (nginx's own $variables stay).
set -eu
if [ "${1:-}" = nginx ] || [ "${1:-}" = nginx-debug ]; then
  defined_envs=$(printf '${%s} ' $(awk 'END { for (name in ENVIRON) { print name } }' </dev/null))
  for template in /etc/nginx/templates/*.template; do
    [ -f "$template" ] || continue
    output=/etc/nginx/conf.d/$(basename "$template" .template)
    echo "$0: running envsubst on $template to $output"
    envsubst "$defined_envs" <"$template" >"$output"
  done
  echo "$0: ready for start up"
fi
exec "$@"
