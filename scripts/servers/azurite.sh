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
source scripts/servers/common.bash

# 3.35.0: the newest whose declared engines accept the Node.js 20 this
# machine image ships (3.36 wants Node 21, 3.37 Node 22).
VERSION=3.35.0
NAME=azurite
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

serve() {
  exec setsid "$BINARY" --blobHost 127.0.0.1 --blobPort "$1" --location "$DATA/data" \
    --skipApiVersionCheck --loose --disableProductStyleUrl
}

# Any answer will do: the blob service needs a signed request to say more.
ready_url() { echo "http://127.0.0.1:$1/$ACCOUNT?comp=list"; }

print_env() {
  echo "export MTLOG_AUDIT_AZURITE_BLOB_ENDPOINT=http://127.0.0.1:$1/$ACCOUNT"
  echo "export MTLOG_AUDIT_AZURITE_ACCOUNT=$ACCOUNT"
  echo "export MTLOG_AUDIT_AZURITE_KEY=$KEY"
}

main "$@"
