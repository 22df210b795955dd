#!/usr/bin/env bash
# Many connections on one host (issue #14, item 3). A process here may open at most `ulimit -Hn`
# files (20,000 on the machine of bench/RESULTS.md), so --nodes wspushd processes share one port
# (reuse_port) as nodes of one cluster on their own redis-server, and wspush-bench holds the
# connections in --processes worker processes, bound in turn to --addresses loopback source
# addresses (127.0.0.2, 127.0.0.3, ...: ~28,000 ephemeral ports each towards one server address).
#
#   bench/connections.sh [--build DIR] [--connections N] [--nodes K] [--processes P]
#                        [--addresses A] [--messages M] [--channels C]
#
# Two runs of wspush-bench against the same nodes, each connecting everything anew:
#   - idle: every subscriber connected and subscribed, held 10 s: connect rate (connections per
#     second of the connect phase) and the nodes' RSS per connection (the sum over the nodes,
#     after minus before, divided by the connections);
#   - fanout: --messages publications (default 20) to --channels channels (default 1: every
#     connection gets every publication), one at a time as fast as they are delivered: deliveries
#     per second and the nodes' CPU per delivery.
# Everything listens on 127.0.0.1; the source addresses are loopback too. Defaults: 100,000
# connections, 6 nodes, 6 processes, 4 addresses.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source bench/lib.sh

build=build connections=100000 nodes=6 processes=6 addresses=4 messages=20 channels=1
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=${2:?}; shift ;;
    --connections) connections=${2:?}; shift ;;
    --nodes) nodes=${2:?}; shift ;;
    --processes) processes=${2:?}; shift ;;
    --addresses) addresses=${2:?}; shift ;;
    --messages) messages=${2:?}; shift ;;
    --channels) channels=${2:?}; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "connections.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
for v in connections nodes processes addresses messages channels; do
  [[ ${!v} =~ ^[0-9]+$ ]] && [ "${!v}" -ge 1 ] || { echo "connections.sh: --$v must be a positive integer" >&2; exit 2; }
done
[ "$connections" -le 200000 ] || { echo "connections.sh: --connections at most 200000" >&2; exit 2; }
[ "$nodes" -le 16 ] && [ "$addresses" -le 16 ] && [ "$processes" -le 32 ] ||
  { echo "connections.sh: at most 16 nodes, 16 addresses, 32 processes" >&2; exit 2; }
limit=$(ulimit -Hn)
# Each node gets about connections/nodes; the kernel's hash spreads them within a few hundred.
[ $(( connections / nodes + 2000 )) -lt "$limit" ] ||
  { echo "connections.sh: $((connections / nodes)) connections per node exceed the descriptor limit ($limit): more --nodes" >&2; exit 2; }
[ $(( connections / addresses )) -lt 28000 ] ||
  { echo "connections.sh: $((connections / addresses)) connections per source address: more --addresses" >&2; exit 2; }
case $build in /*) ;; *) build="$root/$build" ;; esac
for bin in "$build/wspushd" "$build/bench/wspush-bench" "$(command -v redis-server || true)" "$(command -v node || true)"; do
  [ -n "$bin" ] && [ -x "$bin" ] || { echo "connections.sh: missing $bin" >&2; exit 1; }
done

work=$(mktemp -d /tmp/wspush-connections.XXXXXX)
redis_pid="" node_pids=()
cleanup() {
  for pid in "${node_pids[@]+"${node_pids[@]}"}"; do stop_pid "$pid"; done
  stop_pid "$redis_pid"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

start_redis
ulimit -n "$limit"
# A port for all the nodes: wspushd's port 0 would give each its own.
shared_port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
api_ports=() pids_csv=""
for i in $(seq "$nodes"); do
  WSPUSH_ENGINE=redis WSPUSH_REDIS_ADDRESSES="[\"127.0.0.1:$redis_port\"]" WSPUSH_NODE_NAME="node-$i" \
    WSPUSH_REUSE_PORT=true WSPUSH_API_LISTEN=127.0.0.1:0 \
    "$build/wspushd" --config config/wspush.json --port "$shared_port" --threads 1 --log-level warn \
    --ready-file "$work/ready-$i.json" >"$work/node-$i.log" 2>&1 &
  node_pids+=("$!")
  wait_ready "$work/ready-$i.json" || { echo "connections.sh: node $i did not start" >&2; cat "$work/node-$i.log" >&2; exit 1; }
  api_ports+=("$api_port")
  pids_csv+="${pids_csv:+,}${node_pids[-1]}"
done
local_addresses=$(seq -s, -f '127.0.0.%g' 2 $((addresses + 1)))
echo "$nodes nodes on 127.0.0.1:$shared_port (reuse_port, Redis engine, one loop each), API ports ${api_ports[*]}; $connections connections from $local_addresses in $processes processes"

common=(--port "$shared_port" --api-port "${api_ports[0]}" --connections "$connections" --channels "$channels"
        --processes "$processes" --local-addresses "$local_addresses" --server-pid "$pids_csv"
        --connect-timeout 120 --connect-concurrency 512)
node_connections() {  # the connections each node holds now, space-separated
  local port counts=()
  for port in "${api_ports[@]}"; do
    counts+=("$(curl -s -m 2 "http://127.0.0.1:$port/api/info" | sed -n 's/.*"connections":\([0-9]*\).*/\1/p')")
  done
  echo "${counts[*]}"
}
"$build/bench/wspush-bench" idle "${common[@]}" --duration 10 --settle 3 >"$work/idle.txt" 2>&1 &
bench_pid=$!
spread=""
for _ in $(seq 300); do  # until everything is connected (at most 150 s), while the run holds them
  kill -0 "$bench_pid" 2>/dev/null || break
  spread=$(node_connections)
  total=0; for n in $spread; do total=$((total + ${n:-0})); done
  [ "$total" -ge "$connections" ] && break
  sleep 0.5
done
wait "$bench_pid" || true
cat "$work/idle.txt"
echo "connections per node once all were connected: $spread"
"$build/bench/wspush-bench" fanout "${common[@]}" --messages "$messages" --rate 0 --inflight 1 --timeout 120 |
  tee "$work/fanout.txt"
