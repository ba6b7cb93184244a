#!/usr/bin/env bash
# Installs the Debian packages that the integration tests run as real servers, when missing and we
# are root with apt-get; otherwise says what is missing (under CI=true those tests then fail).
# Usage: scripts/ensure-debian.sh PATH=PACKAGE ...   e.g. /usr/sbin/dnsmasq=dnsmasq-base
set -euo pipefail
missing=()
for pair in "$@"; do
  path="${pair%%=*}" package="${pair#*=}"
  [ -x "$path" ] || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian packages for the integration tests: ${missing[*]} ..."
  apt-get update -qq >/dev/null
  # policy-rc.d 101: install the servers without starting their system services; tests start their own.
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && own_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  exit 0
fi
echo "missing Debian packages (need root and apt-get to install): ${missing[*]}" >&2
