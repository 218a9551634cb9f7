#!/usr/bin/env bash
# Install and run the API with demo tenants on all three tiers. With DATABASE_URL unset it uses an
# embedded PostgreSQL under .data/ (git-ignored); set DATABASE_URL to use your own server.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/ensure-node.sh
. scripts/npm-install.sh
exec npm start
