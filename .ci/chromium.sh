# Sourced by ./dev and .ci/run: headless Chromium for the status page's browser test
# (test/status-page.test.ts), from Debian's chromium package. Installs it when missing and allowed
# (root, or sudo); otherwise says what to run. The test names the package itself when it is absent.
ensure_chromium() {
  local browser="${CHROMIUM_PATH:-/usr/bin/chromium}"
  [ -x "$browser" ] && return 0
  local hint="the browser test needs $browser: install Debian's chromium package (apt-get install -y chromium)"
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "Chromium is missing and apt-get is not available; $hint" >&2
    return 1
  fi
  local as_root=()
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "Chromium is missing and this user cannot install packages; $hint" >&2
      return 1
    fi
    # A terminal may be asked for a password; CI (no terminal) only uses password-less sudo.
    if [ -t 0 ]; then as_root=(sudo); else as_root=(sudo -n); fi
  fi
  echo "installing Chromium (Debian package chromium) for the browser test" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! "${as_root[@]}" apt-get install -y -qq chromium >/dev/null; then
    "${as_root[@]}" apt-get update -qq >/dev/null && "${as_root[@]}" apt-get install -y -qq chromium >/dev/null || {
      echo "installing chromium failed; $hint" >&2
      return 1
    }
  fi
}
