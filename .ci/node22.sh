# Sourced by ./dev and .ci/run: puts Node.js 22+ first on PATH. When the system Node is older, node@22
# comes from the npm registry into a cache folder outside the repository (once per machine).
ensure_node22() {
  local major
  major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  if [ "$major" -ge 22 ]; then return 0; fi
  local cache="${OSQ_ORCH_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/osquery-orchestrator/node22}"
  if [ ! -x "$cache/node_modules/node/bin/node" ]; then
    if ! command -v npm >/dev/null 2>&1; then
      echo "npm is not on PATH: install Node.js (any version with npm) so node@22 can be fetched" >&2
      return 1
    fi
    echo "system Node is $(node --version 2>/dev/null || echo missing); installing node@22 into $cache" >&2
    mkdir -p "$cache"
    npm install --no-save --no-package-lock --no-audit --no-fund --prefix "$cache" node@22 >&2 || return 1
  fi
  export PATH="$cache/node_modules/node/bin:$PATH"
  hash -r
}
