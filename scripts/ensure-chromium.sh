#!/usr/bin/env bash
# Browser tests drive Debian's Chromium (never a browser download).  Install it
# when it is missing and we can; otherwise the browser tests skip with a message,
# or, with FAREBOX_REQUIRE_BROWSER=1 (CI), this fails.
set -u
CHROMIUM="${FAREBOX_CHROMIUM:-/usr/bin/chromium}"
[ -x "$CHROMIUM" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the browser tests..."
  if apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1; then
    exit 0
  fi
fi
if [ "${FAREBOX_REQUIRE_BROWSER:-}" = 1 ]; then
  echo "Chromium is not installed and could not be installed here, and FAREBOX_REQUIRE_BROWSER=1." >&2
  exit 1
fi
echo "Chromium is not installed and could not be installed here: the browser tests will be skipped."
exit 0
