#!/usr/bin/env bash
# The dashboard test drives Debian's Chromium headless. Install it when it is
# missing and we can (root with apt-get, as on CI and fresh dev machines);
# otherwise say how, and let the test report the failure.
set -u
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the dashboard test (once)..." >&2
  if apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; then
    exit 0
  fi
  echo "warning: apt-get install chromium failed; the dashboard test will fail" >&2
  exit 0
fi
echo "note: /usr/bin/chromium is missing; install it with: sudo apt-get install chromium" >&2
exit 0
