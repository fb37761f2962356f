#!/usr/bin/env bash
# Starts (or stops) the storage servers the tests use, on 127.0.0.1 with
# free ports: every scripts/servers/NAME.sh. Each installs its server on
# first use into ./bin (git-ignored, pinned version, reused afterwards),
# starts it, waits until it answers, and prints the environment variables
# the tests read ("export NAME=value" lines); this script collects them in
# .servers/env. Logs and data go to .servers/NAME/.
#
#   scripts/servers.sh start   # install if needed, start, write .servers/env
#   scripts/servers.sh stop    # stop what start started
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .servers bin
cmd=${1:-start}
case "$cmd" in
start)
  : > .servers/env.tmp
  for s in scripts/servers/*.sh; do
    [ -e "$s" ] || continue
    echo "servers: starting $(basename "$s" .sh)" >&2
    bash "$s" start >> .servers/env.tmp
  done
  mv .servers/env.tmp .servers/env
  cat .servers/env
  ;;
stop)
  for s in scripts/servers/*.sh; do
    [ -e "$s" ] || continue
    bash "$s" stop || true
  done
  rm -f .servers/env
  ;;
*)
  echo "usage: $0 start|stop" >&2
  exit 2
  ;;
esac
