# shellcheck shell=bash
# Sourced by the other scripts (`. scripts/ensure-node.sh`): puts Node >= 22.12 (package.json
# "engines") on PATH. When the machine's node is older or missing, the official binary comes from
# the npm registry (package node-linux-<arch>, which holds package/bin/node) and is cached in
# .tools/node (git-ignored). Idempotent; prints one line naming the node in use.
#
# ~/.npmrc on some machines sets `nodedir`, which npm 11 warns about on every call ("Unknown user
# config nodedir"). Harmless: npm calls made here run with --loglevel=error, and the output of
# `npm pack` is only shown when it fails.

_strata_node_ok() { # path-or-name of a node binary -> 0 when it runs and is >= 22.12
  "$1" -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=12)?0:1)' >/dev/null 2>&1
}

_strata_ensure_node() {
  local root dir arch tmp
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)" || return 1
  dir="$root/.tools/node"

  if ! _strata_node_ok node; then
    if ! _strata_node_ok "$dir/bin/node"; then
      if ! command -v npm >/dev/null 2>&1; then
        echo "strata: npm is missing; installing Debian's npm to fetch node" >&2
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm; } >/dev/null ||
          { echo "strata: could not install npm with apt-get" >&2; return 1; }
      fi
      case "$(uname -m)" in
        x86_64 | amd64) arch=x64 ;;
        aarch64 | arm64) arch=arm64 ;;
        *) echo "strata: no node-linux package for $(uname -m); install Node >= 22.12 yourself" >&2; return 1 ;;
      esac
      echo "strata: node $(node -v 2>/dev/null || echo 'not found') is older than 22.12; fetching node-linux-$arch@24 from the npm registry into .tools/node" >&2
      mkdir -p "$root/.tools" || return 1
      # Download and unpack next to the cache, then rename: an interrupted run leaves no half cache.
      tmp="$(mktemp -d "$root/.tools/.node-XXXXXX")" || return 1
      if ! (cd "$tmp" && npm pack "node-linux-$arch@24" --pack-destination "$tmp" --loglevel=error >"$tmp/pack.log" 2>&1); then
        echo "strata: 'npm pack node-linux-$arch@24' failed:" >&2
        sed 's/^/  /' "$tmp/pack.log" >&2
        rm -rf "$tmp"
        return 1
      fi
      if ! tar -xzf "$tmp"/node-linux-*.tgz -C "$tmp" || ! _strata_node_ok "$tmp/package/bin/node"; then
        echo "strata: the node-linux-$arch package did not contain a working package/bin/node" >&2
        rm -rf "$tmp"
        return 1
      fi
      rm -rf "$dir"
      # A concurrent run may have won the rename; its copy is as good as ours.
      mv -T "$tmp/package" "$dir" 2>/dev/null || _strata_node_ok "$dir/bin/node" || { rm -rf "$tmp"; return 1; }
      rm -rf "$tmp"
    fi
    case ":$PATH:" in
      *":$dir/bin:"*) ;;
      *) PATH="$dir/bin:$PATH" ;;
    esac
    export PATH
    hash -r
    _strata_node_ok node || { echo "strata: $dir/bin/node is on PATH but does not run" >&2; return 1; }
  fi
  echo "strata: using node $(node -v) ($(command -v node))" >&2
}

if ! _strata_ensure_node; then
  echo "strata: no usable Node >= 22.12" >&2
  # shellcheck disable=SC2317 # `exit` is reached when this file is executed instead of sourced
  return 1 2>/dev/null || exit 1
fi
