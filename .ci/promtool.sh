# Sourced by ./dev and .ci/run: promtool (Prometheus's rule checker) for test/prometheus.test.ts, from
# Debian's prometheus package. Only the promtool binary is kept, in a cache folder outside the repository:
# installing the package would add a Prometheus server (started at once on a systemd host), its user and a
# dozen JavaScript packages for its web UI, none of which the tests use. `apt-get download` needs no root
# when the package lists are current. The test names the package itself when promtool is absent.
ensure_promtool() {
  command -v promtool >/dev/null 2>&1 && return 0
  local cache="${OSQ_ORCH_PROMTOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/osquery-orchestrator/promtool}"
  if [ -x "$cache/promtool" ]; then
    export PATH="$cache:$PATH"
    return 0
  fi
  local hint="the rule tests need promtool: from Debian's prometheus package (apt-get install -y prometheus), or put promtool on PATH"
  if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-deb >/dev/null 2>&1; then
    echo "promtool is missing and apt-get/dpkg-deb are not available; $hint" >&2
    return 1
  fi
  local work
  work=$(mktemp -d)
  echo "fetching promtool (Debian package prometheus, promtool only) into $cache" >&2
  if ! (cd "$work" && apt-get download -qq prometheus >/dev/null 2>&1); then
    # Stale or empty package lists: refresh them when allowed (root, or password-less sudo in CI).
    local as_root=()
    if [ "$(id -u)" -ne 0 ]; then
      if ! command -v sudo >/dev/null 2>&1; then
        echo "downloading the prometheus package failed and this user cannot refresh apt's lists; $hint" >&2
        rm -rf "$work"
        return 1
      fi
      if [ -t 0 ]; then as_root=(sudo); else as_root=(sudo -n); fi
    fi
    if ! { "${as_root[@]}" apt-get update -qq >/dev/null && (cd "$work" && apt-get download -qq prometheus >/dev/null 2>&1); }; then
      echo "downloading the prometheus package failed; $hint" >&2
      rm -rf "$work"
      return 1
    fi
  fi
  mkdir -p "$cache"
  if ! dpkg-deb --fsys-tarfile "$work"/prometheus_*.deb | tar -xO ./usr/bin/promtool >"$cache/promtool.part"; then
    echo "extracting promtool from the prometheus package failed; $hint" >&2
    rm -rf "$work" "$cache/promtool.part"
    return 1
  fi
  rm -rf "$work"
  chmod +x "$cache/promtool.part"
  mv "$cache/promtool.part" "$cache/promtool"
  export PATH="$cache:$PATH"
}
