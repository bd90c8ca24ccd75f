# Sourced by ./dev and .ci/run: ruby for the test that runs the bundle's fluentd filter plugin
# (test/unit/fluentd-shipped.test.ts), from Debian's ruby package. Installs it when missing and allowed
# (root, or sudo); otherwise says what to run. The test names the package itself when it is absent.
ensure_ruby() {
  local ruby="${RUBY_PATH:-ruby}"
  command -v "$ruby" >/dev/null 2>&1 && return 0
  local hint="the fluentd plugin test needs ruby: install Debian's ruby package (apt-get install -y ruby)"
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "ruby is missing and apt-get is not available; $hint" >&2
    return 1
  fi
  local as_root=()
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "ruby is missing and this user cannot install packages; $hint" >&2
      return 1
    fi
    # A terminal may be asked for a password; CI (no terminal) only uses password-less sudo.
    if [ -t 0 ]; then as_root=(sudo); else as_root=(sudo -n); fi
  fi
  echo "installing ruby (Debian package ruby) for the fluentd plugin test" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! "${as_root[@]}" apt-get install -y -qq ruby >/dev/null; then
    "${as_root[@]}" apt-get update -qq >/dev/null && "${as_root[@]}" apt-get install -y -qq ruby >/dev/null || {
      echo "installing ruby failed; $hint" >&2
      return 1
    }
  fi
}
