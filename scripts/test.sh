#!/usr/bin/env bash
# The whole test suite on a fresh machine: Node >= 22, dependencies, PostgreSQL + Redis, then
# typecheck, architecture rules and every jest project (unit, integration, e2e).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/ensure-node.sh
. scripts/npm-install.sh
. scripts/ensure-services.sh

npm run typecheck
npm run lint:deps
results="$(mktemp)"
status=0
npx jest --runInBand --json --outputFile="$results" || status=$?
# One plain closing line that any CI reader understands.
node -e 'const r=require(process.argv[1]);console.log(`jest: ${r.numPassedTests} passed, ${r.numFailedTests} failed` + (r.numPendingTests ? `, ${r.numPendingTests} skipped` : ""))' "$results" || true
rm -f "$results"
exit "$status"
