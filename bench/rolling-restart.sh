#!/usr/bin/env bash
# A rolling restart's drain (issue #13): how long a node takes to send --connections clients away
# at --drain-rate, and the reconnect rate the other node sees.
#
# Starts its own redis-server and two wspushd nodes on the Redis engine (loopback, free ports, one
# event loop each, shutdown.timeout --timeout), connects --connections WebSocket clients to node A
# (bench/rolling-restart-clients.cjs: Node's `ws` from sdk/js/node_modules, --processes processes,
# `connect` each), sends node A SIGTERM, and reconnects each client to node B as soon as its
# connection to node A closes, without the SDK's random delay: the worst case for node B. Then the
# same with drain_rate 0 (everyone at once), the peer of the first run. Prints, per run: the drain
# (SIGTERM to the last client told to go, to node A's exit, and to the last client back on node
# B), the most clients told to go in one second, the most reconnects arriving at node B in one
# second and in 100 ms (a client starts its reconnect when its connection to node A closes), the
# most completed there (`connected`) in one second, and a JSON line.
#
#   bench/rolling-restart.sh [--build DIR] [--connections N] [--drain-rate R] [--timeout S]
#                            [--processes K]
#
# Everything listens on 127.0.0.1; the clients give up after 120 s.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source bench/lib.sh

build=build connections=10000 rate=2000 timeout=20 processes=4
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=${2:?}; shift ;;
    --connections) connections=${2:?}; shift ;;
    --drain-rate) rate=${2:?}; shift ;;
    --timeout) timeout=${2:?}; shift ;;
    --processes) processes=${2:?}; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "rolling-restart.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[[ $connections =~ ^[0-9]+$ ]] && [ "$connections" -ge 1 ] && [ "$connections" -le 15000 ] ||
  { echo "rolling-restart.sh: --connections 1-15000" >&2; exit 2; }
[[ $rate =~ ^[0-9]+$ ]] && [ "$rate" -ge 1 ] || { echo "rolling-restart.sh: --drain-rate: a positive integer" >&2; exit 2; }
[[ $processes =~ ^[0-9]+$ ]] && [ "$processes" -ge 1 ] && [ "$processes" -le 16 ] ||
  { echo "rolling-restart.sh: --processes 1-16" >&2; exit 2; }
[[ $timeout =~ ^[0-9]+$ ]] && [ "$timeout" -ge 1 ] && [ "$timeout" -le 300 ] ||
  { echo "rolling-restart.sh: --timeout 1-300 seconds" >&2; exit 2; }
case $build in /*) ;; *) build="$root/$build" ;; esac
for bin in "$build/wspushd" "$(command -v redis-server || true)" "$(command -v node || true)"; do
  [ -n "$bin" ] && [ -x "$bin" ] || { echo "rolling-restart.sh: missing $bin" >&2; exit 1; }
done
[ -d sdk/js/node_modules/ws ] || { echo "rolling-restart.sh: run npm ci in sdk/js first" >&2; exit 1; }

work=$(mktemp -d /tmp/wspush-rolling-restart.XXXXXX)
redis_pid="" a_pid="" b_pid=""
cleanup() {
  stop_pid "$a_pid"
  stop_pid "$b_pid"
  stop_pid "$redis_pid"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
ulimit -n "$(ulimit -Hn)"
start_redis

start_node() {  # name, drain rate → sets node_pid, port
  rm -f "$work/$1.json"  # the last run's
  WSPUSH_ENGINE=redis WSPUSH_REDIS_ADDRESSES="[\"127.0.0.1:$redis_port\"]" WSPUSH_NODE_NAME=$1 \
    WSPUSH_SHUTDOWN_TIMEOUT=$timeout WSPUSH_SHUTDOWN_DRAIN_RATE=$2 WSPUSH_LIMITS_CONNECTIONS_PER_USER=0 \
    "$build/wspushd" --config config/wspush.json --port 0 --threads 1 --log-level warn \
    --ready-file "$work/$1.json" >"$work/$1.log" 2>&1 &
  node_pid=$!
  wait_ready "$work/$1.json" || { echo "rolling-restart.sh: wspushd $1 did not start" >&2; cat "$work/$1.log" >&2; exit 1; }
}

run() {  # drain rate → one JSON line
  start_node a "$1"; a_pid=$node_pid; local a_port=$port
  start_node b "$1"; b_pid=$node_pid; local b_port=$port
  local pids=() i share
  rm -f "$work"/ready.* "$work"/clients.*
  for ((i = 0; i < processes; i++)); do
    share=$(( connections / processes + (i < connections % processes ? 1 : 0) ))
    NODE_PATH=sdk/js/node_modules node bench/rolling-restart-clients.cjs "$a_port" "$b_port" "$share" \
      "$work/ready.$i" >"$work/clients.$i" &
    pids+=($!)
  done
  for _ in $(seq 1200); do  # 120 s
    [ "$(find "$work" -name 'ready.*' | wc -l)" -eq "$processes" ] && break
    sleep 0.1
  done
  [ "$(find "$work" -name 'ready.*' | wc -l)" -eq "$processes" ] ||
    { echo "rolling-restart.sh: the clients did not all connect to node A" >&2; exit 1; }
  local terminated exited
  terminated=$(date +%s%3N)
  kill -TERM "$a_pid"
  wait "$a_pid" || true
  exited=$(date +%s%3N)
  a_pid=""
  for pid in "${pids[@]}"; do wait "$pid" || true; done
  node -e '
    const fs = require("fs");
    const [dir, processes, terminated, exited] = process.argv.slice(1);
    const told = [], arrived = [], back = [];
    for (let i = 0; i < Number(processes); i++) {
      const part = JSON.parse(fs.readFileSync(`${dir}/clients.${i}`, "utf8"));
      told.push(...part.told); arrived.push(...part.arrived); back.push(...part.back);
    }
    back.sort((x, y) => x - y);
    told.sort((x, y) => x - y);
    arrived.sort((x, y) => x - y);
    const peak = (width, t = back) => {  // the most of the times `t` in any window of `width` ms
      let best = 0;
      for (let i = 0, j = 0; i < t.length; i++) { while (t[i] - t[j] >= width) j++; best = Math.max(best, i - j + 1); }
      return best;
    };
    console.log(JSON.stringify({ told: told.length, reconnected: back.length,
      drain_ms: Math.round(Math.max(...told) - Number(terminated)), exit_ms: Number(exited) - Number(terminated),
      last_back_ms: Math.round(back[back.length - 1] - Number(terminated)),
      told_peak_per_second: peak(1000, told), arrivals_peak_per_second: peak(1000, arrived),
      arrivals_peak_per_100ms: peak(100, arrived), connected_peak_per_second: peak(1000) }));
  ' "$work" "$processes" "$terminated" "$exited"
  stop_pid "$b_pid"; b_pid=""
  redis-cli -p "$redis_port" flushall >/dev/null
}

paced=$(run "$rate")
echo "drain_rate $rate: $paced"
at_once=$(run 0)
echo "drain_rate 0 (all at once): $at_once"
printf '{"rolling_restart":true,"connections":%s,"drain_rate":%s,"timeout":%s,"paced":%s,"at_once":%s}\n' \
  "$connections" "$rate" "$timeout" "$paced" "$at_once"
