# Sourced by ./dev and .ci/run: headless Chromium for the status page's browser test
# (test/status-page.test.ts), from Debian's chromium package. Installs it when missing and allowed
# (root, or sudo); otherwise says what to run. The test names the package itself when it is absent.
source "$(dirname "${BASH_SOURCE[0]}")/debian.sh"
ensure_chromium() {
  local browser="${CHROMIUM_PATH:-/usr/bin/chromium}"
  [ -x "$browser" ] && return 0
  local hint="the browser test needs $browser: install Debian's chromium package (apt-get install -y chromium)"
  install_debian_package Chromium chromium "the browser test" "$hint"
}
