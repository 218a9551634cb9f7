# shellcheck shell=bash
# Sourced by test.sh and demo.sh from the repo root: `npm install` (never `npm ci`: a lockfile made
# on one platform lacks other platforms' optional binaries). Skipped when node_modules is newer than
# package.json and package-lock.json, to keep reruns fast, except in CI (CI=true).
if [ "${CI:-}" = "true" ] || [ ! -d node_modules ] || [ package.json -nt node_modules ] ||
  { [ -e package-lock.json ] && [ package-lock.json -nt node_modules ]; }; then
  npm install --no-audit --no-fund --loglevel=error
  touch node_modules
fi
