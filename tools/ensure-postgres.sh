#!/usr/bin/env bash
# The mirror tests start a throwaway PostgreSQL cluster with Debian's server
# binaries (initdb, pg_ctl under /usr/lib/postgresql/<version>/bin). Install
# them when missing and we can (root with apt-get, as on CI and fresh dev
# machines); otherwise say how, and let the tests report the failure.
set -u
if compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's postgresql for the mirror tests (once)..." >&2
  if apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; then
    exit 0
  fi
  echo "warning: apt-get install postgresql failed; the mirror tests will fail" >&2
  exit 0
fi
echo "note: PostgreSQL's initdb is missing; install it with: sudo apt-get install postgresql" >&2
exit 0
