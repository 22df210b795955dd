#!/usr/bin/env bash
# Smoke test of wspush-bench against wspush: every scenario at a small size, with and without
# --deflate, fanout also with --qos 1 and 2 and with worker processes, recover on a server that
# keeps history; with redis-server installed, fanout and recover also on the Redis engine (its own
# redis-server on a free loopback port, no persistence; skipped when redis-server is missing). Not
# a benchmark: it checks that each run exits 0 and that its JSON line says it measured, without
# loss or failures.
# About 20-40 s. Needs nothing but the build (no nchan, no ws, no jq).
#
# Usage: bench/smoke.sh BUILD_DIR        (with BUILD_DIR/wspushd and BUILD_DIR/bench/wspush-bench)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
build=$1
case $build in /*) ;; *) build="$PWD/$build" ;; esac
server_bin="$build/wspushd" bench_bin="$build/bench/wspush-bench"
for bin in "$server_bin" "$bench_bin"; do
  [ -x "$bin" ] || { echo "smoke: $bin is missing" >&2; exit 1; }
done

work=$(mktemp -d /tmp/wspush-smoke.XXXXXX)
server=""
stop_server() {
  [ -n "$server" ] || return 0
  kill -TERM "$server" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  server=""
}
redis_pid=""
stop_redis() {
  [ -n "$redis_pid" ] || return 0
  kill -TERM "$redis_pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$redis_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$redis_pid" 2>/dev/null || true
  wait "$redis_pid" 2>/dev/null || true
  redis_pid=""
}
cleanup() { stop_server; stop_redis; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

ulimit -n "$(ulimit -Hn)"
# Extra environment of the next servers: recover needs channel history, which config/wspush.json
# leaves off (this replaces its channel_defaults; see bench/README.md, recover).
server_env=()
history_env=(WSPUSH_CHANNEL_DEFAULTS='{"history_size":10000,"history_ttl":300,"recovery_max":10000}')
start_server() {  # sets port, pid
  local ready="$work/ready.json"
  rm -f "$ready"
  env "${server_env[@]+"${server_env[@]}"}" "$server_bin" --config "$root/config/wspush.json" --port 0 --threads 1 --log-level warn \
    --ready-file "$ready" >"$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 100); do
    if [ -s "$ready" ] && grep -q '"pid"' "$ready"; then
      port=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$ready")
      pid=$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "$ready")
      [ -n "$port" ] && [ -n "$pid" ] && return 0
    fi
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
  done
  echo "smoke: wspushd did not start" >&2
  cat "$work/server.log" >&2
  exit 1
}

passed=0 failed=0
# run NAME "KEY:VALUE …" BENCH-ARGS…: a fresh server, one bench run, then the checks.
run() {
  local name=$1 checks=$2; shift 2
  start_server
  local out="$work/out.txt" status start=$SECONDS
  set +e
  timeout --kill-after=5 40 "$bench_bin" "$@" --port "$port" --server-pid "$pid" --max-time 30 >"$out" 2>&1
  status=$?
  set -e
  stop_server
  local line problems=()
  line=$(grep '^{"scenario":' "$out" | tail -n 1 || true)
  [ "$status" -eq 0 ] || problems+=("exit status $status")
  if [ -z "$line" ]; then
    problems+=("no JSON line")
  else
    for check in '"measured":true' $checks; do
      grep -Eq "${check}[,}]" <<<"$line" || problems+=("${check} expected")
    done
  fi
  if [ ${#problems[@]} -eq 0 ]; then
    passed=$((passed + 1))
    printf 'ok    %-28s %3ds\n' "$name" $((SECONDS - start))
  else
    failed=$((failed + 1))
    printf 'FAIL  %-28s %s\n' "$name" "$(IFS=';'; echo "${problems[*]}")"
    sed 's/^/      /' "$out" | tail -n 40
  fi
}

ok_fanout='"failed":0 "lost":0 "duplicated":0 "dropped":0 "complete":true "publish_errors":0'
ok_idle='"connected":200 "failed":0 "dropped":0'
ok_publish='"errors":0 "unconfirmed":0 "subscriber_lost":0'
ok_churn='"failures":0'
ok_recover='"failures":0 "complete":true "publish_errors":0 "missed_per_client":200'
fanout=(fanout --connections 200 --channels 4 --messages 100 --size 100 --rate 0 --timeout 10)

run "idle"                    "$ok_idle"    idle --connections 200 --channels 4 --duration 1 --settle 0.2
run "idle --deflate"          "$ok_idle"    idle --connections 200 --channels 4 --duration 1 --settle 0.2 --deflate
run "fanout"                  "$ok_fanout"  "${fanout[@]}"
run "fanout --deflate"        "$ok_fanout"  "${fanout[@]}" --size 600 --deflate
run "fanout --qos 1"          "$ok_fanout"  "${fanout[@]}" --qos 1
run "fanout --qos 2"          "$ok_fanout"  "${fanout[@]}" --qos 2
run "fanout --qos 2 --deflate" "$ok_fanout" "${fanout[@]}" --qos 2 --size 600 --deflate
run "fanout --rate 100"       "$ok_fanout"  "${fanout[@]}" --rate 100 --messages 50
run "fanout --processes 2"    "$ok_fanout"  "${fanout[@]}" --processes 2 --threads 2
run "fanout --batch 16"       "$ok_fanout"  "${fanout[@]}" --batch 16 --messages 160
run "publish"                 "$ok_publish" publish --duration 1
run "publish --deflate"       "$ok_publish" publish --duration 1 --publishers 2 --pipeline 8 --size 600 --deflate
run "publish --qos 1"         "$ok_publish" publish --duration 1 --qos 1
run "churn"                   "$ok_churn"   churn --duration 1 --concurrency 10
run "churn --deflate"         "$ok_churn"   churn --duration 1 --concurrency 10 --deflate
run "churn --unique-channels" "$ok_churn"   churn --duration 1 --concurrency 10 --unique-channels
server_env=("${history_env[@]}")
run "recover"                 "$ok_recover \"recovered\":20" recover --connections 20 --messages 200
run "recover --deflate"       "$ok_recover \"recovered\":20" recover --connections 20 --messages 200 --size 600 --deflate
run "recover --batch 50"      "$ok_recover \"recovered\":20" recover --connections 20 --channels 2 --messages 400 \
                                                             --batch 50 --threads 2
server_env=()

# The Redis engine: a redis-server of our own on a free loopback port.
redis_port=""
if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
  for _ in 1 2 3 4 5; do
    p=$((20000 + RANDOM % 30000))
    redis-server --bind 127.0.0.1 --port "$p" --save "" --appendonly no --dir "$work" --daemonize no \
      --loglevel warning --logfile "$work/redis.log" &
    redis_pid=$!
    for _ in $(seq 50); do
      redis-cli -p "$p" ping 2>/dev/null | grep -q PONG && { redis_port=$p; break; }
      kill -0 "$redis_pid" 2>/dev/null || break
      sleep 0.1
    done
    [ -n "$redis_port" ] && break
    stop_redis
  done
fi
if [ -n "$redis_port" ]; then
  redis_env=(WSPUSH_ENGINE=redis "WSPUSH_REDIS_ADDRESSES=[\"127.0.0.1:$redis_port\"]")
  server_env=("${redis_env[@]}")
  run "fanout (redis engine)"   "$ok_fanout"  "${fanout[@]}"
  redis-cli -p "$redis_port" flushall >/dev/null
  server_env=("${redis_env[@]}" "${history_env[@]}")
  run "recover (redis engine)"  "$ok_recover \"recovered\":20" recover --connections 20 --messages 200
  server_env=()
  stop_redis
else
  echo "skip  redis engine runs (no redis-server, or it did not start)"
fi

echo "smoke: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
