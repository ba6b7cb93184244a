#!/usr/bin/env bash
# The browser tests drive Debian's Chromium through Playwright (no browser download).
# Installs it when missing and we are root with apt-get; otherwise says what to do.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the browser tests ..."
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  exit 0
fi
echo "chromium not found and cannot be installed here (need root and apt-get): the browser tests will skip" >&2
