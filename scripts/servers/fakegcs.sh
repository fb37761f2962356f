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
source scripts/servers/common.bash

VERSION=1.56.1
NAME=fakegcs
DIR=bin/fake-gcs-server-$VERSION
BINARY=$DIR/fake-gcs-server
DATA=.servers/fakegcs

install() {
  [ -x "$BINARY" ] && return 0
  echo "fakegcs: building fake-gcs-server@v$VERSION into $DIR" >&2
  mkdir -p "$DIR"
  GOBIN=$PWD/$DIR nice -n 10 go install "github.com/fsouza/fake-gcs-server@v$VERSION" >&2
}

serve() {
  exec setsid "$BINARY" -scheme http -host 127.0.0.1 -port "$1" \
    -public-host "127.0.0.1:$1" -external-url "http://127.0.0.1:$1" \
    -backend filesystem -filesystem-root "$DATA/data" -log-level warn
}

ready_url() { echo "http://127.0.0.1:$1/storage/v1/b"; }

print_env() {
  echo "export MTLOG_AUDIT_FAKEGCS_ENDPOINT=http://127.0.0.1:$1"
}

main "$@"
