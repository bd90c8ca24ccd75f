# Sourced by ./dev and .ci/run: ruby for the test that runs the bundle's fluentd filter plugin
# (test/unit/fluentd-shipped.test.ts), from Debian's ruby package. Installs it when missing and allowed
# (root, or sudo); otherwise says what to run. The test names the package itself when it is absent.
source "$(dirname "${BASH_SOURCE[0]}")/debian.sh"
ensure_ruby() {
  local ruby="${RUBY_PATH:-ruby}"
  command -v "$ruby" >/dev/null 2>&1 && return 0
  local hint="the fluentd plugin test needs ruby: install Debian's ruby package (apt-get install -y ruby)"
  install_debian_package ruby ruby "the fluentd plugin test" "$hint"
}
