#!/usr/bin/env bash
# Azurite, the Azure Storage emulator (blob service only), for the tests of
# backends/azure. Installed with npm (pinned) into ./bin/azurite-VERSION and
# reused afterwards; started on 127.0.0.1 on a free port with its data under
# .servers/azurite.
#
#   scripts/servers/azurite.sh install   # npm install if not there yet
#   scripts/servers/azurite.sh start     # install, start, print export lines
#   scripts/servers/azurite.sh stop      # stop what start started
#
# Azurite runs with the well-known development account devstoreaccount1 and
# its published key (not a secret: the same for every Azurite).
set -euo pipefail
cd "$(dirname "$0")/../.."

VERSION=3.37.0
DIR=bin/azurite-$VERSION
BINARY=$DIR/node_modules/.bin/azurite-blob
DATA=.servers/azurite
ACCOUNT=devstoreaccount1
KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

install() {
  [ -x "$BINARY" ] && return 0
  command -v npm >/dev/null || { echo "azurite: npm is not installed (apt-get install npm)" >&2; exit 1; }
  echo "azurite: installing azurite@$VERSION into $DIR" >&2
  mkdir -p "$DIR"
  nice -n 10 npm install --no-audit --no-fund --prefix "$DIR" "azurite@$VERSION" >&2
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
  echo "export MTLOG_AUDIT_AZURITE_BLOB_ENDPOINT=http://127.0.0.1:$1/$ACCOUNT"
  echo "export MTLOG_AUDIT_AZURITE_ACCOUNT=$ACCOUNT"
  echo "export MTLOG_AUDIT_AZURITE_KEY=$KEY"
}

running() {
  [ -f "$DATA/pid" ] && kill -0 "$(cat "$DATA/pid")" 2>/dev/null
}

start() {
  install
  mkdir -p "$DATA"
  if running; then
    print_env "$(cat "$DATA/port")"
    return 0
  fi
  port=$(free_port)
  setsid "$BINARY" --blobHost 127.0.0.1 --blobPort "$port" --location "$DATA/data" \
    --skipApiVersionCheck --loose --disableProductStyleUrl \
    > "$DATA/log" 2>&1 < /dev/null &
  echo $! > "$DATA/pid"
  echo "$port" > "$DATA/port"
  # Ready when the blob service answers HTTP (any status: it needs a signed
  # request to say more).
  for _ in $(seq 1 300); do
    if curl -s -o /dev/null "http://127.0.0.1:$port/$ACCOUNT?comp=list"; then
      print_env "$port"
      return 0
    fi
    running || { echo "azurite: exited; see $DATA/log:" >&2; tail -n 20 "$DATA/log" >&2; exit 1; }
    sleep 0.2
  done
  echo "azurite: not answering on 127.0.0.1:$port after 60 s; see $DATA/log" >&2
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
