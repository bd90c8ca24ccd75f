# Sourced by ./dev and .ci/run: rsyslogd for the test that validates the bundle's rsyslog rule with
# `rsyslogd -N1` (test/rsyslog-rule.test.ts), from Debian's rsyslog package. Installs it when missing and
# allowed (root, or sudo); otherwise says what to run. The test names the package itself when it is absent.
# The test only runs the config check; on a machine with systemd, installing the package also starts the
# rsyslog service, as any Debian install does.
source "$(dirname "${BASH_SOURCE[0]}")/debian.sh"
ensure_rsyslog() {
  local daemon="${RSYSLOGD_PATH:-/usr/sbin/rsyslogd}"
  [ -x "$daemon" ] && return 0
  local hint="the rsyslog rule test needs $daemon: install Debian's rsyslog package (apt-get install -y rsyslog)"
  install_debian_package rsyslogd rsyslog "the rsyslog rule test" "$hint"
}
