# Sourced by the .ci/ensure scripts: installs one Debian package when allowed (root, or sudo; CI, which has no
# terminal, only uses password-less sudo); otherwise says what to run. Returns 1 when it could not.
install_debian_package() {
  local what="$1" package="$2" purpose="$3" hint="$4"
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "$what is missing and apt-get is not available; $hint" >&2
    return 1
  fi
  local as_root=()
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "$what is missing and this user cannot install packages; $hint" >&2
      return 1
    fi
    # A terminal may be asked for a password; CI (no terminal) only uses password-less sudo.
    if [ -t 0 ]; then as_root=(sudo); else as_root=(sudo -n); fi
  fi
  echo "installing $what (Debian package $package) for $purpose" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! "${as_root[@]}" apt-get install -y -qq "$package" >/dev/null; then
    "${as_root[@]}" apt-get update -qq >/dev/null && "${as_root[@]}" apt-get install -y -qq "$package" >/dev/null || {
      echo "installing $package failed; $hint" >&2
      return 1
    }
  fi
}
