# Shared by the bench scripts that run their own redis-server and wspushd: sourced, not run.
# The caller sets `work` (a temp dir it removes) before calling these.

# Stops a process: TERM, up to 5 s, then KILL.
stop_pid() {
  [ -n "${1:-}" ] || return 0
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# Starts redis-server on 127.0.0.1, on port $1 or a free one, without persistence, in $work.
# Sets redis_pid and redis_port.
start_redis() {
  local p
  for _ in 1 2 3 4 5 6 7 8; do
    p=${1:-$((20000 + RANDOM % 30000))}
    redis-server --bind 127.0.0.1 --port "$p" --save "" --appendonly no --dir "$work" \
      --daemonize no --loglevel warning --logfile "$work/redis.log" &
    redis_pid=$!
    for _ in $(seq 50); do
      if redis-cli -p "$p" ping 2>/dev/null | grep -q PONG; then redis_port=$p; return 0; fi
      kill -0 "$redis_pid" 2>/dev/null || break
      sleep 0.1
    done
    stop_pid "$redis_pid"; redis_pid=""
    [ -z "${1:-}" ] || break
  done
  echo "redis-server did not start" >&2; cat "$work/redis.log" >&2 || true
  return 1
}

# Waits for wspushd's --ready-file $1 (10 s at most); sets port and api_port.
wait_ready() {
  for _ in $(seq 100); do
    [ -s "$1" ] && grep -q '"pid"' "$1" && break
    sleep 0.1
  done
  port=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$1" 2>/dev/null || true)
  api_port=$(sed -n 's/.*"api_port":\([0-9]*\).*/\1/p' "$1" 2>/dev/null || true)
  [ -n "$port" ] || return 1
  [ -n "$api_port" ] || api_port=$port
}
