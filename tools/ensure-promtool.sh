#!/usr/bin/env bash
# The metrics test checks /metrics with promtool, which Debian ships in its
# prometheus package. Install it when it is missing and we can (root with
# apt-get, as on CI and fresh dev machines); otherwise say how. Without it the
# test falls back to its own check of the exposition rules.
set -u
if command -v promtool >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's prometheus (for promtool) for the metrics test (once)..." >&2
  if apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; then
    # The package starts a Prometheus server; the test needs only promtool.
    if command -v systemctl >/dev/null 2>&1; then systemctl disable --now prometheus >/dev/null 2>&1 || true; fi
    exit 0
  fi
  echo "warning: apt-get install prometheus failed; the metrics test checks the exposition rules itself" >&2
  exit 0
fi
echo "note: promtool is missing; install it with: sudo apt-get install prometheus (the metrics test checks the exposition rules itself meanwhile)" >&2
exit 0
