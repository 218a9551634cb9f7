# shellcheck shell=bash
# Sourced: `npm install` (never `npm ci`: a lockfile made on one platform lacks other platforms'
# optional binaries). Skipped when node_modules is newer than the manifests, except in CI.
if [ "${CI:-}" = "true" ] || [ ! -d node_modules ] || [ package.json -nt node_modules ] || [ package-lock.json -nt node_modules ]; then
  npm install --no-audit --no-fund --loglevel=error
  touch node_modules
fi
