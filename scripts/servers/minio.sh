#!/usr/bin/env bash
# MinIO for the tests of backends/s3 and of shipping: a single-drive server
# on 127.0.0.1 with a free port, its data under .servers/minio/. Buckets are
# made by the tests themselves (one per test, with Object Lock enabled).
#
#   scripts/servers/minio.sh install  # build ./bin/minio-$VERSION if missing
#   scripts/servers/minio.sh start    # install, start, wait until ready, print
#                                     # the export lines the tests read
#   scripts/servers/minio.sh stop     # stop what start started
#
# MinIO is built from source with `go install` of a pinned version (it has
# no semver tags, hence a pseudo-version): the first build takes several
# minutes, later starts reuse ./bin/minio-$VERSION. Only Go is needed.
set -euo pipefail
cd "$(dirname "$0")/../.."

VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
BIN=bin/minio-$VERSION
DIR=.servers/minio
ACCESS_KEY=mtlogaudit
SECRET_KEY=mtlogaudit-test-only

install() {
  [ -x "$BIN" ] && return 0
  mkdir -p bin
  local tmp
  tmp=$(mktemp -d bin/.minio-XXXXXX)
  echo "minio: building github.com/minio/minio@$VERSION into $BIN (takes minutes once)" >&2
  GOBIN="$PWD/$tmp" GOFLAGS=-buildvcs=false nice go install "github.com/minio/minio@$VERSION" >&2
  mv "$tmp/minio" "$BIN"
  rmdir "$tmp"
}

# answers PORT: whether a MinIO on 127.0.0.1:PORT says it is ready.
answers() {
  local status
  exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
  printf 'GET /minio/health/ready HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
  IFS= read -r -t 5 status <&3 || status=
  exec 3<&- 3>&-
  [[ "$status" == "HTTP/1."?" 200"* ]]
}

running() {
  [ -f "$DIR/pid" ] && kill -0 "$(cat "$DIR/pid")" 2>/dev/null
}

emit() {
  echo "export MTLOG_AUDIT_MINIO_ENDPOINT=http://127.0.0.1:$1"
  echo "export MTLOG_AUDIT_MINIO_ACCESS_KEY=$ACCESS_KEY"
  echo "export MTLOG_AUDIT_MINIO_SECRET_KEY=$SECRET_KEY"
}

start() {
  install
  mkdir -p "$DIR"
  if running && [ -f "$DIR/port" ] && answers "$(cat "$DIR/port")" 2>/dev/null; then
    emit "$(cat "$DIR/port")"
    return 0
  fi
  # A fresh start begins with an empty store: the tests' buckets of earlier
  # runs (kept by Object Lock) would only fill the disk.
  rm -rf "$DIR/data"
  mkdir -p "$DIR/data"
  local try port pid
  for try in 1 2 3 4 5 6 7 8; do
    # A port nothing listens on now; if MinIO loses the race for it, it
    # exits and the next try takes another.
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
    MINIO_ROOT_USER=$ACCESS_KEY MINIO_ROOT_PASSWORD=$SECRET_KEY MINIO_BROWSER=off \
      MINIO_UPDATE=off MINIO_CI_CD=1 \
      nohup "$BIN" server --quiet --address "127.0.0.1:$port" "$DIR/data" \
      > "$DIR/minio.log" 2>&1 < /dev/null &
    pid=$!
    echo "$pid" > "$DIR/pid"
    echo "$port" > "$DIR/port"
    # Ready within 60 s (it usually takes one), or it died.
    for _ in $(seq 1 240); do
      if ! kill -0 "$pid" 2>/dev/null; then break; fi
      if answers "$port" 2>/dev/null; then
        emit "$port"
        return 0
      fi
      sleep 0.25
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    echo "minio: did not start on port $port (try $try); log:" >&2
    tail -n 20 "$DIR/minio.log" >&2 || true
  done
  rm -f "$DIR/pid" "$DIR/port"
  echo "minio: could not start; see $DIR/minio.log" >&2
  return 1
}

stop() {
  if running; then
    local pid
    pid=$(cat "$DIR/pid")
    kill "$pid"
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$DIR/pid" "$DIR/port"
}

case "${1:-start}" in
install) install ;;
start) start ;;
stop) stop ;;
*)
  echo "usage: $0 install|start|stop" >&2
  exit 2
  ;;
esac
