#!/usr/bin/env bash
# Presence at scale on the Redis engine (issue #11): how long `presence_stats` takes on a channel
# with --members members, and how much Redis time one refresh round of their entries costs.
#
# Starts its own redis-server and one wspushd on the Redis engine (loopback, free ports, presence
# on in the default namespace, presence_ttl 3 s, so that the node refreshes every second), holds
# --members idle subscribers of one channel (wspush-bench idle), then:
#   - asks GET /api/presence/stats --requests times, one at a time, each on a new connection
#     (curl's time_total), and prints p50, p99 and max in ms;
#   - logs every Redis command slower than 1 ms (SLOWLOG) for --window seconds: the refresh rounds
#     (one EVALSHA per event loop and channel, --members entries) are the only ones that slow, and
#     prints their count and their mean and max duration in ms.
#
#   bench/presence-cost.sh [--build DIR] [--members N] [--requests N] [--window S] [--threads N]
#
# Prints one JSON line starting with {"presence_cost":. Everything listens on 127.0.0.1.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source bench/lib.sh

build=build members=10000 requests=1000 window=6 threads=1
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=${2:?}; shift ;;
    --members) members=${2:?}; shift ;;
    --requests) requests=${2:?}; shift ;;
    --window) window=${2:?}; shift ;;
    --threads) threads=${2:?}; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "presence-cost.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[[ $members =~ ^[0-9]+$ ]] && [ "$members" -ge 1 ] && [ "$members" -le 15000 ] ||
  { echo "presence-cost.sh: --members 1-15000" >&2; exit 2; }
[[ $requests =~ ^[0-9]+$ ]] && [ "$requests" -ge 10 ] && [ "$requests" -le 100000 ] ||
  { echo "presence-cost.sh: --requests 10-100000" >&2; exit 2; }
[[ $window =~ ^[0-9]+$ ]] && [ "$window" -ge 2 ] && [ "$window" -le 120 ] ||
  { echo "presence-cost.sh: --window 2-120 seconds" >&2; exit 2; }
case $build in /*) ;; *) build="$root/$build" ;; esac
for bin in "$build/wspushd" "$build/bench/wspush-bench" "$(command -v redis-server || true)" "$(command -v jq || true)"; do
  [ -n "$bin" ] && [ -x "$bin" ] || { echo "presence-cost.sh: missing $bin" >&2; exit 1; }
done

work=$(mktemp -d /tmp/wspush-presence-cost.XXXXXX)
redis_pid="" server_pid="" bench_pid=""
cleanup() {
  stop_pid "$bench_pid"
  stop_pid "$server_pid"
  stop_pid "$redis_pid"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

start_redis
ulimit -n "$(ulimit -Hn)"
WSPUSH_ENGINE=redis WSPUSH_REDIS_ADDRESSES="[\"127.0.0.1:$redis_port\"]" WSPUSH_NODE_NAME=presence-cost \
  WSPUSH_PRESENCE_TTL=3 WSPUSH_CHANNEL_DEFAULTS='{"presence":true}' \
  "$build/wspushd" --config config/wspush.json --port 0 --threads "$threads" --log-level warn \
  --ready-file "$work/ready.json" >"$work/server.log" 2>&1 &
server_pid=$!
wait_ready "$work/ready.json" || { echo "presence-cost.sh: wspushd did not start" >&2; cat "$work/server.log" >&2; exit 1; }

hold=$((window + requests / 50 + 60))
"$build/bench/wspush-bench" idle --port "$port" --connections "$members" --channels 1 --duration "$hold" \
  --settle 0 --connect-timeout 20 --max-time $((hold + 60)) >"$work/bench.txt" 2>&1 &
bench_pid=$!
stats() { curl -s -m 2 "http://127.0.0.1:$api_port/api/presence/stats?channel=bench-0"; }
clients=0
for _ in $(seq 600); do  # 60 s
  clients=$(stats | jq -r '.clients // 0' 2>/dev/null || echo 0)
  [ "${clients:-0}" -ge "$members" ] && break
  kill -0 "$bench_pid" 2>/dev/null || break
  sleep 0.1
done
[ "${clients:-0}" -ge "$members" ] || { echo "presence-cost.sh: only ${clients:-0} of $members present" >&2; cat "$work/bench.txt" >&2; exit 1; }
echo "wspushd pid $server_pid ($threads event loop(s)), redis-server port $redis_port: $clients members of bench-0"

# presence_stats, one request at a time.
for _ in $(seq "$requests"); do
  curl -s -o /dev/null -m 2 -w '%{time_total}\n' "http://127.0.0.1:$api_port/api/presence/stats?channel=bench-0"
done | sort -n >"$work/latency.txt"
read -r p50 p99 max < <(awk '{ v[NR] = $1 * 1000 } END {
  printf "%.3f %.3f %.3f\n", v[int(NR * 0.50) > 0 ? int(NR * 0.50) : 1], v[int(NR * 0.99) > 0 ? int(NR * 0.99) : 1], v[NR] }' "$work/latency.txt")
echo "GET /api/presence/stats, $requests requests: p50 $p50 ms, p99 $p99 ms, max $max ms (curl time_total, new connection each)"

# The refresh rounds: the only commands slower than 1 ms.
redis-cli -p "$redis_port" config set slowlog-log-slower-than 1000 >/dev/null
redis-cli -p "$redis_port" config set slowlog-max-len 10000 >/dev/null
redis-cli -p "$redis_port" slowlog reset >/dev/null
sleep "$window"
redis-cli -p "$redis_port" --json slowlog get 10000 >"$work/slowlog.json"
read -r rounds mean_ms max_ms < <(jq -r '[.[] | .[2]] | if length == 0 then "0 0 0" else
  "\(length) \((add / length / 1000) * 1000 | round / 1000) \((max / 1000) * 1000 | round / 1000)" end' "$work/slowlog.json")
echo "refresh: $rounds Redis calls over 1 ms in ${window} s (a round a second, one call per event loop): mean $mean_ms ms, max $max_ms ms of Redis time"

printf '{"presence_cost":true,"members":%s,"threads":%s,"stats_requests":%s,"stats_p50_ms":%s,"stats_p99_ms":%s,"stats_max_ms":%s,"refresh_calls":%s,"refresh_mean_ms":%s,"refresh_max_ms":%s}\n' \
  "$members" "$threads" "$requests" "$p50" "$p99" "$max" "$rounds" "$mean_ms" "$max_ms"
