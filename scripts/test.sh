#!/usr/bin/env bash
# The README's test command, and what CI runs (.ci/run): Node >= 22.12, dependencies, PostgreSQL +
# Redis, Chromium (browser tests), then typecheck, architecture rules (lint:deps, when package.json has it) and every jest
# project (unit, integration, e2e). Exits with the test run's exit code.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

. scripts/ensure-node.sh
. scripts/npm-install.sh
. scripts/ensure-services.sh
. scripts/ensure-chromium.sh

# --loglevel=error: npm's own warnings (e.g. "Unknown user config nodedir") are noise here.
npm run typecheck --loglevel=error
if node -e 'process.exit(require("./package.json").scripts?.["lint:deps"] ? 0 : 1)'; then
  npm run lint:deps --loglevel=error
fi

results="$(mktemp --suffix=.json)"
trap 'rm -f "$results"' EXIT
status=0
npm test --loglevel=error -- --json --outputFile="$results" || status=$?
# One plain closing line that any CI reader understands: `jest: N passed, N failed[, N skipped]`.
# shellcheck disable=SC2016 # ${...} below are JavaScript template literals
node -e '
  const fs = require("node:fs");
  let r;
  try { r = JSON.parse(fs.readFileSync(process.argv[1], "utf8")); } catch { r = undefined; }
  console.log(r
    ? `jest: ${r.numPassedTests} passed, ${r.numFailedTests} failed` +
      (r.numPendingTests ? `, ${r.numPendingTests} skipped` : "") +
      (r.numRuntimeErrorTestSuites ? `\njest: ${r.numRuntimeErrorTestSuites} suites failed to run` : "")
    : `jest: no results (exit ${process.argv[2]})`);
' "$results" "$status" || true
exit "$status"
