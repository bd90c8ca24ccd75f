# Sourced by ./dev and .ci/run: rsyslogd for the test that validates the bundle's rsyslog rule with
# `rsyslogd -N1` (test/rsyslog-rule.test.ts), from Debian's rsyslog package. Installs it when missing and
# allowed (root, or sudo); otherwise says what to run. The test names the package itself when it is absent.
# The test only runs the config check; on a machine with systemd, installing the package also starts the
# rsyslog service, as any Debian install does.
ensure_rsyslog() {
  local daemon="${RSYSLOGD_PATH:-/usr/sbin/rsyslogd}"
  [ -x "$daemon" ] && return 0
  local hint="the rsyslog rule test needs $daemon: install Debian's rsyslog package (apt-get install -y rsyslog)"
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "rsyslogd is missing and apt-get is not available; $hint" >&2
    return 1
  fi
  local as_root=()
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "rsyslogd is missing and this user cannot install packages; $hint" >&2
      return 1
    fi
    # A terminal may be asked for a password; CI (no terminal) only uses password-less sudo.
    if [ -t 0 ]; then as_root=(sudo); else as_root=(sudo -n); fi
  fi
  echo "installing rsyslogd (Debian package rsyslog) for the rsyslog rule test" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! "${as_root[@]}" apt-get install -y -qq rsyslog >/dev/null; then
    "${as_root[@]}" apt-get update -qq >/dev/null && "${as_root[@]}" apt-get install -y -qq rsyslog >/dev/null || {
      echo "installing rsyslog failed; $hint" >&2
      return 1
    }
  fi
}
