#!/usr/bin/env bash
# fake-gcs-server, a Google Cloud Storage emulator, for the tests of
# backends/gcs. Built with `go install` (pinned) into
# ./bin/fake-gcs-server-VERSION and reused afterwards; started on 127.0.0.1
# on a free port with its data under .servers/fakegcs.
#
#   scripts/servers/fakegcs.sh install   # go install if not there yet
#   scripts/servers/fakegcs.sh start     # install, start, print export lines
#   scripts/servers/fakegcs.sh stop      # stop what start started
set -euo pipefail
cd "$(dirname "$0")/../.."

VERSION=1.56.1
DIR=bin/fake-gcs-server-$VERSION
BINARY=$DIR/fake-gcs-server
DATA=.servers/fakegcs

install() {
  [ -x "$BINARY" ] && return 0
  echo "fakegcs: building fake-gcs-server@v$VERSION into $DIR" >&2
  mkdir -p "$DIR"
  GOBIN=$PWD/$DIR nice -n 10 go install "github.com/fsouza/fake-gcs-server@v$VERSION" >&2
}

# free_port prints a TCP port on 127.0.0.1 that nothing listens on.
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  echo "no free port found" >&2
  return 1
}

print_env() {
  echo "export MTLOG_AUDIT_FAKEGCS_ENDPOINT=http://127.0.0.1:$1"
}

running() {
  [ -f "$DATA/pid" ] && kill -0 "$(cat "$DATA/pid")" 2>/dev/null
}

start() {
  install
  mkdir -p "$DATA/data"
  if running; then
    print_env "$(cat "$DATA/port")"
    return 0
  fi
  port=$(free_port)
  setsid "$BINARY" -scheme http -host 127.0.0.1 -port "$port" \
    -public-host "127.0.0.1:$port" -external-url "http://127.0.0.1:$port" \
    -backend filesystem -filesystem-root "$DATA/data" -log-level warn \
    > "$DATA/log" 2>&1 < /dev/null &
  echo $! > "$DATA/pid"
  echo "$port" > "$DATA/port"
  for _ in $(seq 1 300); do
    if curl -sf -o /dev/null "http://127.0.0.1:$port/storage/v1/b"; then
      print_env "$port"
      return 0
    fi
    running || { echo "fakegcs: exited; see $DATA/log:" >&2; tail -n 20 "$DATA/log" >&2; exit 1; }
    sleep 0.2
  done
  echo "fakegcs: not answering on 127.0.0.1:$port after 60 s; see $DATA/log" >&2
  stop
  exit 1
}

stop() {
  if running; then
    kill "$(cat "$DATA/pid")" 2>/dev/null || true
  fi
  rm -f "$DATA/pid" "$DATA/port"
}

case "${1:-start}" in
install) install ;;
start) start ;;
stop) stop ;;
*) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
