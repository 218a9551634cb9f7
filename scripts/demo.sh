#!/usr/bin/env bash
# Install and run the API and the worker with demo tenants on all three tiers. With DATABASE_URL
# unset the API starts an embedded PostgreSQL under .data/ (git-ignored) and the worker joins it;
# set DATABASE_URL to use your own server. Redis (jobs, cache, registry pub/sub) is used when
# REDIS_URL is set or one answers on 127.0.0.1:6379.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/ensure-node.sh
. scripts/npm-install.sh
if [ -z "${REDIS_URL:-}" ] && command -v redis-cli >/dev/null 2>&1 && redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  export REDIS_URL=redis://127.0.0.1:6379
fi
npm run build --loglevel=error
node dist/apps/api/src/main.js &
api=$!
trap 'kill "$api" ${worker:-} 2>/dev/null; wait' EXIT INT TERM
for _ in $(seq 1 120); do
  curl -fs "http://127.0.0.1:${PORT:-3000}/health/live" >/dev/null 2>&1 && break
  kill -0 "$api" 2>/dev/null || exit 1
  sleep 1
done
if [ -n "${REDIS_URL:-}" ]; then
  node dist/apps/worker/src/main.js &
  worker=$!
else
  echo "strata: no Redis; the worker is not started (set REDIS_URL)" >&2
fi
wait "$api"
