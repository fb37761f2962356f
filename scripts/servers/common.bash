# Sourced by the scripts/servers/*.sh (it is not itself a server: servers.sh
# runs only *.sh). A script sets NAME and DATA (.servers/NAME) and defines:
#   install          install the pinned server into ./bin if it is not there
#   serve PORT       exec the server (with setsid, so that it outlives this
#                    script's process group) on 127.0.0.1:PORT
#   ready_url PORT   a URL that answers (any HTTP status) once it is ready
#   print_env PORT   print the "export NAME=value" lines the tests read
# and ends with: main "$@".

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
  echo "$NAME: no free port found" >&2
  return 1
}

running() {
  [ -f "$DATA/pid" ] && kill -0 "$(cat "$DATA/pid")" 2>/dev/null
}

# start installs and starts the server (or reuses the one running), waits
# until it answers and prints its export lines.
start() {
  install
  mkdir -p "$DATA"
  if running; then
    print_env "$(cat "$DATA/port")"
    return 0
  fi
  local port
  port=$(free_port)
  serve "$port" > "$DATA/log" 2>&1 < /dev/null &
  echo $! > "$DATA/pid"
  echo "$port" > "$DATA/port"
  for _ in $(seq 1 300); do
    if curl -s -o /dev/null "$(ready_url "$port")"; then
      print_env "$port"
      return 0
    fi
    running || { echo "$NAME: exited; see $DATA/log:" >&2; tail -n 20 "$DATA/log" >&2; exit 1; }
    sleep 0.2
  done
  echo "$NAME: not answering on 127.0.0.1:$port after 60 s; see $DATA/log" >&2
  stop
  exit 1
}

stop() {
  if running; then
    kill "$(cat "$DATA/pid")" 2>/dev/null || true
  fi
  rm -f "$DATA/pid" "$DATA/port"
}

main() {
  case "${1:-start}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
  esac
}
