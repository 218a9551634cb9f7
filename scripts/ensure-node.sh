# shellcheck shell=bash
# Sourced by the other scripts: puts Node >= 22 on PATH. Nest 12 and nestjs-cls 7 need it; when the
# machine's node is older, the official binary comes from the npm registry (node-linux-<arch>)
# and is kept in .tools/node (git-ignored).
_strata_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_strata_node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

if ! command -v npm >/dev/null 2>&1; then
  echo "strata: npm is missing; installing Debian's nodejs + npm to bootstrap" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi

if [ "$(_strata_node_major)" -lt 22 ]; then
  _strata_node_dir="$_strata_root/.tools/node"
  if [ ! -x "$_strata_node_dir/bin/node" ]; then
    case "$(uname -m)" in
      x86_64) _strata_arch=x64 ;;
      aarch64 | arm64) _strata_arch=arm64 ;;
      *) echo "strata: no node binary package for $(uname -m)" >&2; return 1 2>/dev/null || exit 1 ;;
    esac
    _strata_tmp="$(mktemp -d)"
    echo "strata: system node $(node -v 2>/dev/null || echo none) is older than 22; fetching node-linux-${_strata_arch}@24 from the npm registry" >&2
    (cd "$_strata_tmp" && npm pack "node-linux-${_strata_arch}@24" --silent >/dev/null 2>&1)
    mkdir -p "$_strata_node_dir"
    tar xzf "$_strata_tmp"/node-linux-*.tgz -C "$_strata_node_dir" --strip-components=1
    rm -rf "$_strata_tmp"
  fi
  export PATH="$_strata_node_dir/bin:$PATH"
fi
echo "strata: node $(node -v), npm $(npm -v 2>/dev/null)" >&2
