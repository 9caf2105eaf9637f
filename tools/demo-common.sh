# Sourced by the tools/demo*.sh scripts once VENV and PY are set: a scratch folder and
# the processes they start (both removed on exit), a free port on 127.0.0.1, and waiting
# for something to listen on one.
pids=()
work=$(mktemp -d)
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
await_port() {
  for _ in $(seq 1 600); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "$(basename "$0" .sh): nothing listens on port $1" >&2; return 1
}
