#!/usr/bin/env bash
# shellcheck shell=bash
# Sourced by scripts/test.sh (after ensure-services.sh), or run on its own: makes sure the
# browser tests (test/e2e/browser-cors.e2e-spec.ts, driven by playwright-core) have a Chromium.
#
#   Found: STRATA_CHROMIUM if set, else /usr/bin/chromium; exported as STRATA_CHROMIUM.
#   Missing: `apt-get install chromium` (Debian's build; needs root).
# Unlike PostgreSQL and Redis this never stops the run: without Chromium only the browser tests
# fail, with a message saying how to install it (they never skip).

if ! declare -F _strata_apt_install >/dev/null; then
  _strata_log() { echo "strata: $*" >&2; }
  _strata_apt_install() { # packages...
    if [ "$(id -u)" != 0 ]; then
      _strata_log "$* missing and not root: install them (apt-get install $*)"
      return 1
    fi
    _strata_log "installing $* with apt-get"
    apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" </dev/null >/dev/null 2>&1
  }
fi

_strata_ensure_chromium() {
  local path="${STRATA_CHROMIUM:-/usr/bin/chromium}"
  if [ ! -x "$path" ] && [ -z "${STRATA_CHROMIUM:-}" ]; then
    _strata_apt_install chromium || return 1
  fi
  if [ ! -x "$path" ]; then
    _strata_log "no Chromium at $path"
    return 1
  fi
  export STRATA_CHROMIUM="$path"
  _strata_log "$("$path" --version 2>/dev/null | head -n1) at $path"
}

if ! _strata_ensure_chromium; then
  _strata_log "Chromium is missing and could not be installed: the browser tests (test/e2e/browser-cors.e2e-spec.ts) will fail"
fi
