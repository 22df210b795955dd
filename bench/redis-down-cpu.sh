#!/usr/bin/env bash
# The daemon's CPU while its Redis is down (issue #10: under 5 % of a core).
#
# Starts its own redis-server (loopback, a free port, no persistence, its own temp dir) and wspushd
# on the Redis engine (config/wspush.json, --threads 1), connects idle subscribers with
# wspush-bench idle, measures wspushd's CPU over a window with Redis up, kills Redis (SIGKILL),
# waits a moment, and measures wspushd's CPU over the same window with Redis down. CPU is
# utime+stime from /proc/PID/stat (10 ms ticks). Then checks that the subscribers are still
# connected, that /readyz says 503, and (with --restart) that the node is ready again once Redis
# is back. Everything listens on 127.0.0.1; every wait is bounded.
#
#   bench/redis-down-cpu.sh [--build DIR] [--connections N] [--channels C] [--window S]
#                           [--server-cpu N] [--bench-cpu N] [--restart]
#
# Prints one line per phase, then one JSON line starting with {"redis_down_cpu":. Exit status: 0
# if the CPU with Redis down is under --max-percent (default 5) of a core and the subscribers
# stayed connected, 1 otherwise, 2 on bad options.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source bench/lib.sh

build=build-bench connections=1000 channels=100 window=20 server_cpu=0 bench_cpu=1 restart=0 max_percent=5
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=${2:?}; shift ;;
    --connections) connections=${2:?}; shift ;;
    --channels) channels=${2:?}; shift ;;
    --window) window=${2:?}; shift ;;
    --server-cpu) server_cpu=${2:?}; shift ;;
    --bench-cpu) bench_cpu=${2:?}; shift ;;
    --max-percent) max_percent=${2:?}; shift ;;
    --restart) restart=1 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "redis-down-cpu.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[[ $connections =~ ^[0-9]+$ ]] && [ "$connections" -ge 1 ] && [ "$connections" -le 15000 ] ||
  { echo "redis-down-cpu.sh: --connections 1-15000" >&2; exit 2; }
[[ $channels =~ ^[0-9]+$ ]] && [ "$channels" -ge 1 ] && [ "$channels" -le "$connections" ] ||
  { echo "redis-down-cpu.sh: --channels 1-connections" >&2; exit 2; }
[[ $window =~ ^[0-9]+$ ]] && [ "$window" -ge 2 ] && [ "$window" -le 300 ] ||
  { echo "redis-down-cpu.sh: --window 2-300 seconds" >&2; exit 2; }
case $build in /*) ;; *) build="$root/$build" ;; esac
for bin in "$build/wspushd" "$build/bench/wspush-bench" "$(command -v redis-server || true)" "$(command -v redis-cli || true)"; do
  [ -n "$bin" ] && [ -x "$bin" ] || { echo "redis-down-cpu.sh: missing $bin (build, or apt-get install redis-server)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/wspush-redis-down.XXXXXX)
redis_pid="" server_pid="" bench_pid=""
cleanup() {
  stop_pid "$bench_pid"
  stop_pid "$server_pid"
  stop_pid "$redis_pid"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

redis_port=""
ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
http_status() { curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$api_port$1" || true; }

start_redis
ulimit -n "$(ulimit -Hn)"
WSPUSH_ENGINE=redis WSPUSH_REDIS_ADDRESSES="[\"127.0.0.1:$redis_port\"]" WSPUSH_NODE_NAME=redis-down \
  taskset -c "$server_cpu" "$build/wspushd" --config config/wspush.json --port 0 --threads 1 --log-level warn \
  --ready-file "$work/ready.json" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
  [ -s "$work/ready.json" ] && grep -q '"pid"' "$work/ready.json" && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
port=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$work/ready.json" 2>/dev/null || true)
api_port=$(sed -n 's/.*"api_port":\([0-9]*\).*/\1/p' "$work/ready.json" 2>/dev/null || true)
[ -n "$port" ] || { echo "redis-down-cpu.sh: wspushd did not start" >&2; cat "$work/server.log" >&2; exit 1; }
[ -n "$api_port" ] || api_port=$port

# Idle subscribers, held for both windows and the checks (bounded by their own --max-time).
hold=$((2 * window + 30))
taskset -c "$bench_cpu" "$build/bench/wspush-bench" idle --port "$port" --connections "$connections" \
  --channels "$channels" --duration "$hold" --settle 0 --connect-timeout 10 --max-time $((hold + 60)) \
  >"$work/bench.txt" 2>&1 &
bench_pid=$!
connected=0
for _ in $(seq 300); do  # 30 s
  connected=$(curl -s -m 2 "http://127.0.0.1:$api_port/api/info" | sed -n 's/.*"connections":\([0-9]*\).*/\1/p' || true)
  [ "${connected:-0}" -ge "$connections" ] && break
  kill -0 "$bench_pid" 2>/dev/null || break
  sleep 0.1
done
sleep 1  # the last subscriptions reach Redis
channels_now=$(curl -s -m 2 "http://127.0.0.1:$api_port/api/info" | sed -n 's/.*"channels":\([0-9]*\).*/\1/p' || true)
echo "wspushd pid $server_pid on CPU $server_cpu, redis-server on port $redis_port; $connected connections, ${channels_now:-?} channels subscribed"
[ "${connected:-0}" -ge "$connections" ] || { echo "redis-down-cpu.sh: only ${connected:-0} of $connections connected" >&2; cat "$work/bench.txt" >&2; exit 1; }

measure() {  # seconds -> percent of a core over that window
  local a b t0 t1
  a=$(cpu_ticks "$server_pid"); t0=$(date +%s.%N)
  sleep "$1"
  b=$(cpu_ticks "$server_pid"); t1=$(date +%s.%N)
  awk -v a="$a" -v b="$b" -v t0="$t0" -v t1="$t1" -v hz="$ticks" 'BEGIN { printf "%.2f", 100 * (b - a) / hz / (t1 - t0) }'
}

up=$(measure "$window")
echo "Redis up:   wspushd CPU ${up} % of a core over ${window} s"
kill -KILL "$redis_pid" 2>/dev/null || true
wait "$redis_pid" 2>/dev/null || true
redis_pid=""
sleep 2  # the node notices (command timeout, reconnect attempts start)
ready_down=$(http_status /readyz)
down=$(measure "$window")
connected_down=$(curl -s -m 2 "http://127.0.0.1:$api_port/api/info" | sed -n 's/.*"connections":\([0-9]*\).*/\1/p' || true)
echo "Redis down: wspushd CPU ${down} % of a core over ${window} s; /readyz $ready_down; ${connected_down:-?} connections still open"

ready_again=""
if [ "$restart" = 1 ]; then
  start_redis "$redis_port"
  t0=$(date +%s.%N)
  for _ in $(seq 150); do  # 15 s
    [ "$(http_status /readyz)" = 200 ] && { ready_again=$(awk -v t0="$t0" -v t1="$(date +%s.%N)" 'BEGIN { printf "%.2f", t1 - t0 }'); break; }
    sleep 0.1
  done
  echo "Redis back: /readyz 200 after ${ready_again:-(not within 15)} s"
fi

ok=$(awk -v d="$down" -v m="$max_percent" 'BEGIN { print (d < m) ? 1 : 0 }')
[ "${connected_down:-0}" -ge "$connections" ] || ok=0
printf '{"redis_down_cpu":true,"connections":%s,"channels":%s,"window_seconds":%s,"cpu_percent_redis_up":%s,"cpu_percent_redis_down":%s,"readyz_down":"%s","connections_open_down":%s,"ready_again_seconds":%s,"max_percent":%s,"ok":%s}\n' \
  "$connections" "$channels" "$window" "$up" "$down" "$ready_down" "${connected_down:-null}" "${ready_again:-null}" "$max_percent" \
  "$([ "$ok" = 1 ] && echo true || echo false)"
[ "$ok" = 1 ]
