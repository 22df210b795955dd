#!/usr/bin/env bash
# Compares wspush with nchan and a Node `ws` broadcast server on one scenario preset. Presets of
# what only wspush does (batch publishing, recovery) run wspush alone: the table then has no ratios.
#
#   bench/compare.sh PRESET [options] [-- extra wspush-bench options]
#   bench/compare.sh --list
#
# Runs the targets alternately (wspush nchan ws wspush nchan ws …, --rounds times), each run on a
# fresh server process pinned to --server-cpu, the load generator pinned to --bench-cpu, with
# --server-pid. Collects the bench's JSON line of every run into a results file (.jsonl) and prints
# a markdown table: the median of each figure per target, and the ratios wspush/peer.
# Needs: bench/peers/install.sh (nginx + nchan, ws, jq), and the build (build-bench by default).
#
# wspush on the Redis engine: --engine redis (the target wspush then runs on Redis), or the target
# names wspush-redis (one node on Redis) and wspush-redis2 (two nodes on one Redis; idle and fanout
# spread the subscribers over both, publishing goes to the first), next to wspush (memory) in one
# invocation. compare.sh then starts its own redis-server (loopback, a free port, no persistence,
# its own temp dir), flushes it before every run and stops it at the end. Ratios in the table are
# variant ÷ base for the wspush variants (base: --base, else wspush if it runs, else the first target), and
# wspush ÷ peer for nchan and ws.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

usage() {
  cat <<'EOF'
usage: bench/compare.sh PRESET [options] [-- extra wspush-bench options]

options:
  --rounds N         rounds of (wspush, nchan, ws) (default 3; 1 with --quick)
  --quick            smoke-sized variant of the preset (seconds, not minutes)
  --deflate          offer permessage-deflate; the peers are configured for it; fanout presets
                     then use 1024-byte messages (wspush compresses from 256 bytes)
  --targets LIST     comma-separated subset of wspush,nchan,ws (default: all three; wspush for
                     the wspush-only presets, burst-16 and recover-*), plus the wspush variants
                     wspush-redis (one node on Redis) and wspush-redis2 (two nodes on one Redis,
                     subscribers spread over both; idle and fanout presets only)
  --engine E         memory (default) or redis: the engine of the target wspush
  --base TARGET      the target the wspush variants' ratios divide by (default: wspush if it
                     runs, else the first target), e.g. --targets wspush,wspush-redis,wspush-redis2
                     --base wspush-redis
  --redis-cpu LIST   CPUs for redis-server (default: --server-cpu, next to the wspushd nodes)
  --build DIR        build directory with wspushd and bench/wspush-bench (default build-bench)
  --server-cpu N     CPU for the server (default 0); --bench-cpu LIST for the bench (default 1)
  --out FILE         results file (default bench/results/<date>-<preset>[-deflate][-quick].jsonl);
                     appended to, the table covers this invocation's runs only
  --list             list the presets and exit
Options after "--" go to wspush-bench after the preset's own (the last one wins), e.g.
  bench/compare.sh fanout-1k -- --messages 500
EOF
}

# ---------------------------------------------------------------------------------------------
# Presets: the scenario, its options, and what --quick changes (appended, so they win).

preset_names=(fanout-1k fanout-1k-latency fanout-10k-1ch fanout-10k-1ch-latency fanout-10k-1000ch
              fanout-10k-1000ch-latency burst burst-paced burst-16 idle-19k publish publish-pipelined churn
              churn-unique recover-1 recover-100)
# The wspush server's channel history for the recover presets (config/wspush.json keeps none; this
# replaces its channel_defaults).
history_env=(WSPUSH_CHANNEL_DEFAULTS='{"history_size":10000,"history_ttl":300,"recovery_max":10000}')
preset() {  # sets scenario, args, quick_args, describe, wspush_only, server_env
  quick_args=() wspush_only=0 server_env=()
  case $1 in
    fanout-1k)
      describe="1,000 subscribers, 1 channel, 100-byte messages, as fast as 8 requests in flight allow"
      scenario=fanout; args=(--connections 1000 --channels 1 --size 100 --rate 0 --messages 2000)
      quick_args=(--messages 200) ;;
    fanout-1k-latency)
      describe="1,000 subscribers, 1 channel, 100-byte messages at a fixed 50 publications/s for 10 s"
      scenario=fanout; args=(--connections 1000 --channels 1 --size 100 --rate 50 --duration 10)
      quick_args=(--duration 3) ;;
    fanout-10k-1ch)
      describe="10,000 subscribers, 1 channel, 100-byte messages, as fast as possible"
      scenario=fanout; args=(--connections 10000 --channels 1 --size 100 --rate 0 --messages 300)
      quick_args=(--connections 2000 --messages 50) ;;
    fanout-10k-1ch-latency)
      describe="10,000 subscribers, 1 channel, 5 publications/s for 20 s (50,000 deliveries/s)"
      scenario=fanout; args=(--connections 10000 --channels 1 --size 100 --rate 5 --duration 20)
      quick_args=(--connections 2000 --duration 4) ;;
    fanout-10k-1000ch)
      describe="10,000 subscribers over 1,000 channels (10 each), as fast as possible"
      scenario=fanout
      args=(--connections 10000 --channels 1000 --size 100 --rate 0 --messages 30000 --publishers 2 --inflight 16)
      quick_args=(--connections 2000 --channels 200 --messages 3000) ;;
    fanout-10k-1000ch-latency)
      describe="10,000 subscribers over 1,000 channels, 5 publications/s per channel (5,000/s) for 10 s"
      scenario=fanout
      args=(--connections 10000 --channels 1000 --size 100 --rate 5000 --duration 10 --publishers 4 --inflight 64)
      quick_args=(--connections 2000 --channels 200 --rate 1000 --duration 3) ;;
    burst)
      describe="1,000 subscribers, 1 channel, 64 publications in flight: many messages queued per connection"
      scenario=fanout
      args=(--connections 1000 --channels 1 --size 100 --rate 0 --messages 5000 --publishers 1 --inflight 64 --pipeline 64)
      quick_args=(--messages 500) ;;
    burst-paced)
      describe="the burst preset's load one message at a time: 100 publications/s, each delivered before the next"
      scenario=fanout; args=(--connections 1000 --channels 1 --size 100 --rate 100 --messages 1000 --inflight 1)
      quick_args=(--messages 200) ;;
    burst-16)
      describe="wspush only (POST /api/batch): fanout-1k-latency's 50 publications/s as 50 bursts of 16 per second; compare its deliveries per CPU-s with fanout-1k-latency's"
      scenario=fanout; args=(--connections 1000 --channels 1 --size 100 --rate 800 --batch 16 --duration 10)
      quick_args=(--duration 3) wspush_only=1 ;;
    idle-19k)
      describe="19,000 subscribers over 100 channels held 5 s: server memory per connection"
      scenario=idle
      args=(--connections 19000 --channels 100 --duration 5 --settle 2 --processes 2 --threads 1 --connect-timeout 20)
      quick_args=(--connections 2000 --processes 1 --duration 2 --settle 1) ;;
    publish)
      describe="HTTP publish, 1 keep-alive connection, 1 request at a time, 10 s, 1 subscriber"
      scenario=publish; args=(--publishers 1 --pipeline 1 --duration 10 --size 100)
      quick_args=(--duration 2) ;;
    publish-pipelined)
      describe="HTTP publish, 4 keep-alive connections with 16 pipelined requests each, 10 s"
      scenario=publish; args=(--publishers 4 --pipeline 16 --duration 10 --size 100)
      quick_args=(--duration 2) ;;
    churn)
      describe="20 loops of connect + subscribe + close for 10 s, channels reused"
      scenario=churn; args=(--concurrency 20 --duration 10 --channels 100)
      quick_args=(--duration 2) ;;
    churn-unique)
      describe="20 loops of connect + subscribe + close for 10 s, a new channel every cycle"
      scenario=churn; args=(--concurrency 20 --duration 10 --unique-channels)
      quick_args=(--duration 2) ;;
    recover-1)
      describe="wspush only (channel history): 1 client misses 1,000 publications of 100 bytes, then subscribes with since and recovers them"
      scenario=recover; args=(--connections 1 --messages 1000 --size 100)
      quick_args=(--messages 200) wspush_only=1 server_env=("${history_env[@]}") ;;
    recover-100)
      describe="wspush only (channel history): 100 clients miss the same 1,000 publications of 100 bytes, then all subscribe with since at once"
      scenario=recover; args=(--connections 100 --messages 1000 --size 100)
      quick_args=(--connections 20 --messages 200) wspush_only=1 server_env=("${history_env[@]}") ;;
    *) return 1 ;;
  esac
}

# ---------------------------------------------------------------------------------------------
# Options

name="" rounds="" quick=0 deflate=0 targets="" build=build-bench
server_cpu=0 bench_cpu=1 out="" extra=() engine=memory redis_cpu="" base=""
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --list)
      for p in "${preset_names[@]}"; do preset "$p"; printf '%-27s %-8s %s\n' "$p" "$scenario" "$describe"; done
      exit 0 ;;
    --rounds) rounds=${2:?}; shift ;;
    --quick) quick=1 ;;
    --deflate) deflate=1 ;;
    --targets) targets=${2:?}; shift ;;
    --build) build=${2:?}; shift ;;
    --server-cpu) server_cpu=${2:?}; shift ;;
    --bench-cpu) bench_cpu=${2:?}; shift ;;
    --engine) engine=${2:?}; shift ;;
    --redis-cpu) redis_cpu=${2:?}; shift ;;
    --base) base=${2:?}; shift ;;
    --out) out=${2:?}; shift ;;
    --) shift; extra=("$@"); break ;;
    -*) echo "compare.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) [ -z "$name" ] || { echo "compare.sh: one preset only" >&2; exit 2; }; name=$1 ;;
  esac
  shift
done
[ -n "$name" ] || { usage >&2; exit 2; }
preset "$name" || { echo "compare.sh: unknown preset \"$name\" (--list)" >&2; exit 2; }
[ -n "$rounds" ] || { [ "$quick" = 1 ] && rounds=1 || rounds=3; }
[[ $rounds =~ ^[1-9][0-9]?$ ]] || { echo "compare.sh: --rounds 1-99" >&2; exit 2; }
if [ -z "$targets" ]; then
  [ "$wspush_only" = 1 ] && targets=wspush || targets=wspush,nchan,ws
fi
case $engine in memory|redis) ;; *) echo "compare.sh: --engine memory or redis" >&2; exit 2 ;; esac
[ -n "$redis_cpu" ] || redis_cpu=$server_cpu
IFS=, read -r -a target_list <<<"$targets"
need_redis=0
[ "$engine" = redis ] && need_redis=1
for t in "${target_list[@]}"; do
  case $t in
    wspush|nchan|ws) ;;
    wspush-redis) need_redis=1 ;;
    wspush-redis2)
      need_redis=1
      case $scenario in idle|fanout) ;; *) echo "compare.sh: wspush-redis2 (subscribers over two nodes) needs an idle or fanout preset" >&2; exit 2 ;; esac ;;
    *) echo "compare.sh: unknown target $t" >&2; exit 2 ;;
  esac
  if [ "$wspush_only" = 1 ] && [ "${t%%-*}" != wspush ]; then
    echo "compare.sh: $name measures what only wspush does; --targets wspush (or its variants)" >&2; exit 2
  fi
done
if [ -n "$base" ]; then
  case ",$targets," in *",$base,"*) ;; *) echo "compare.sh: --base $base is not one of --targets" >&2; exit 2 ;; esac
  case $base in wspush*) ;; *) echo "compare.sh: --base must be wspush or one of its variants" >&2; exit 2 ;; esac
fi
if [ "$need_redis" = 1 ]; then
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
    { echo "compare.sh: redis-server and redis-cli are needed for the Redis engine (apt-get install redis-server)" >&2; exit 1; }
fi
case $build in /*) ;; *) build="$root/$build" ;; esac
bench_bin="$build/bench/wspush-bench"
[ -x "$bench_bin" ] || { echo "compare.sh: $bench_bin is missing" >&2; exit 1; }
command -v jq >/dev/null || { echo "compare.sh: jq is missing (bench/peers/install.sh)" >&2; exit 1; }

# merge_into ARRAY OPTIONS…: each option replaces the same option's value in ARRAY, or is appended.
merge_into() {
  local -n into=$1; shift
  while [ $# -gt 0 ]; do
    local opt=$1 flag=0 i found=0
    case $opt in --deflate|--unique-channels) flag=1 ;; esac
    for i in "${!into[@]}"; do
      if [ "${into[$i]}" = "$opt" ]; then
        found=1
        [ "$flag" = 1 ] || into[i + 1]=$2
        break
      fi
    done
    if [ "$found" = 0 ]; then
      into+=("$opt")
      [ "$flag" = 1 ] || into+=("${2?"$opt needs a value"}")
    fi
    if [ "$flag" = 1 ]; then shift; else shift 2; fi
  done
}
run_args=("${args[@]}")
[ "$quick" = 1 ] && merge_into run_args "${quick_args[@]+"${quick_args[@]}"}"
if [ "$deflate" = 1 ]; then
  merge_into run_args --deflate
  [ "$scenario" = fanout ] && merge_into run_args --size 1024
fi
merge_into run_args "${extra[@]+"${extra[@]}"}"

label=$name
[ "$deflate" = 1 ] && label+="-deflate"
[ "$engine" = redis ] && label+="-redis"
[ "$quick" = 1 ] && label+="-quick"
if [ -z "$out" ]; then
  mkdir -p "$root/bench/results"
  out="$root/bench/results/$(date +%Y%m%d-%H%M%S)-$label.jsonl"
fi
mkdir -p "$(dirname "$out")"

# ---------------------------------------------------------------------------------------------
# Servers: each run starts a fresh one in its own process group (setsid), killed on any exit.

work=$(mktemp -d /tmp/wspush-compare.XXXXXX)
server_pgids=()  # one per server process group (two for wspush-redis2)
stop_server() {
  local g
  for g in "${server_pgids[@]+"${server_pgids[@]}"}"; do kill -TERM -- "-$g" 2>/dev/null || true; done
  for g in "${server_pgids[@]+"${server_pgids[@]}"}"; do
    for _ in $(seq 50); do kill -0 -- "-$g" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$g" 2>/dev/null || true
    wait "$g" 2>/dev/null || true
  done
  server_pgids=()
}
# Our own redis-server (Redis engine): loopback, a free port, no persistence, its own directory.
redis_pid="" redis_port=""
stop_redis() {
  [ -n "$redis_pid" ] || return 0
  kill -TERM "$redis_pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$redis_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$redis_pid" 2>/dev/null || true
  wait "$redis_pid" 2>/dev/null || true
  redis_pid=""
}
start_redis() {
  mkdir -p "$work/redis"
  local try p
  for try in 1 2 3 4 5 6 7 8; do
    p=$((20000 + RANDOM % 30000))
    taskset -c "$redis_cpu" redis-server --bind 127.0.0.1 --port "$p" --save "" --appendonly no \
      --dir "$work/redis" --daemonize no --loglevel warning --logfile "$work/redis/redis.log" &
    redis_pid=$!
    for _ in $(seq 50); do
      if redis-cli -p "$p" ping 2>/dev/null | grep -q PONG; then redis_port=$p; return 0; fi
      kill -0 "$redis_pid" 2>/dev/null || break
      sleep 0.1
    done
    stop_redis  # port taken, or slow: another port
  done
  echo "compare.sh: redis-server did not start; its log:" >&2
  cat "$work/redis/redis.log" >&2 2>/dev/null || true
  return 1
}
bench_pid=""
cleanup() {
  [ -z "$bench_pid" ] || { kill -TERM "$bench_pid" 2>/dev/null || true; wait "$bench_pid" 2>/dev/null || true; }
  stop_server
  stop_redis
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "compare.sh: interrupted" >&2; exit 130' INT TERM HUP

start_one() {  # peer ready-file log [env…]: starts one server process group; sets port, api_port, pid
  local peer=$1 ready=$2 log=$3 g; shift 3
  rm -f "$ready"
  env "${server_env[@]+"${server_env[@]}"}" "$@" DEFLATE=$deflate BUILD_DIR=$build setsid taskset -c "$server_cpu" \
    "$root/bench/peers/$peer/start.sh" 0 "$ready" >"$log" 2>&1 &
  g=$!
  server_pgids+=("$g")
  for _ in $(seq 200); do  # 20 s
    if [ -s "$ready" ] && jq -e '.pid and .port' "$ready" >/dev/null 2>&1; then
      port=$(jq .port "$ready"); api_port=$(jq '.api_port // .port' "$ready"); pid=$(jq .pid "$ready")
      return 0
    fi
    kill -0 "$g" 2>/dev/null || break
    sleep 0.1
  done
  echo "compare.sh: $peer did not start; its output:" >&2
  cat "$log" >&2
  return 1
}
# target run-index; sets port, api_port, server_pid (comma-separated with two nodes), target_args
start_server() {
  local target=$1 n=$2 redis_env=()
  target_args=()
  if [ "$target" = wspush-redis ] || [ "$target" = wspush-redis2 ] || { [ "$target" = wspush ] && [ "$engine" = redis ]; }; then
    redis-cli -p "$redis_port" flushall >/dev/null  # every run starts on an empty Redis
    redis_env=(WSPUSH_ENGINE=redis "WSPUSH_REDIS_ADDRESSES=[\"127.0.0.1:$redis_port\"]")
  fi
  case $target in
    wspush-redis2)
      start_one wspush "$work/ready-$n-a.json" "$work/server-$n-a.log" "${redis_env[@]}" WSPUSH_NODE_NAME=bench-a || return 1
      local port_a=$port api_a=$api_port pid_a=$pid
      start_one wspush "$work/ready-$n-b.json" "$work/server-$n-b.log" "${redis_env[@]}" WSPUSH_NODE_NAME=bench-b || return 1
      target_args=(--servers "127.0.0.1:$port_a,127.0.0.1:$port")
      server_pid="$pid_a,$pid" port=$port_a api_port=$api_a ;;
    wspush-redis)
      start_one wspush "$work/ready-$n.json" "$work/server-$n.log" "${redis_env[@]}" WSPUSH_NODE_NAME=bench-a || return 1
      server_pid=$pid ;;
    *)
      start_one "$target" "$work/ready-$n.json" "$work/server-$n.log" "${redis_env[@]+"${redis_env[@]}"}" || return 1
      server_pid=$pid ;;
  esac
}
# utime+stime of a process in seconds (for redis-server's CPU over a run), empty if unknown.
cpu_of() {
  [ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 0
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"
}

# ---------------------------------------------------------------------------------------------
# Runs

git_rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
versions="wspush $git_rev"
for t in "${target_list[@]}"; do
  case $t in
    nchan) versions+=", $(nginx -v 2>&1 | sed 's/.*version: //') + nchan $(dpkg-query -W -f='${Version}' libnginx-mod-nchan 2>/dev/null || echo '?')" ;;
    ws) versions+=", node $(node --version 2>/dev/null || echo '?') + ws $(jq -r .version "$root/bench/peers/ws/node_modules/ws/package.json" 2>/dev/null || echo '?')" ;;
  esac
done
if [ "$need_redis" = 1 ]; then
  versions+=", redis $(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p') (--save \"\" --appendonly no, on CPU $redis_cpu)"
  start_redis || exit 1
fi
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
echo "preset $label: $describe"
echo "bench: wspush-bench $scenario ${run_args[*]}"
echo "rounds $rounds x (${target_list[*]}); server on CPU $server_cpu, bench on CPU $bench_cpu$([ "$need_redis" = 1 ] && echo ", redis on CPU $redis_cpu (port $redis_port)"), engine of wspush: $engine; load $load_start"
echo "results: $out"

first_line=0
[ -f "$out" ] && first_line=$(wc -l <"$out")
run=0 failed_runs=0
for ((round = 1; round <= rounds; ++round)); do
  for target in "${target_list[@]}"; do
    run=$((run + 1))
    if ! start_server "$target" "$run"; then stop_server; exit 1; fi
    log="$work/bench-$run.txt"
    redis_cpu_start=$(cpu_of "$redis_pid")
    # In the background, so that a signal to this script is handled at once (cleanup stops it).
    timeout --kill-after=10 1800 taskset -c "$bench_cpu" "$bench_bin" "$scenario" --target "${target%%-*}" \
      --port "$port" --api-port "$api_port" --server-pid "$server_pid" "${target_args[@]+"${target_args[@]}"}" \
      "${run_args[@]}" >"$log" 2>&1 &
    bench_pid=$!
    status=0
    wait "$bench_pid" || status=$?
    bench_pid=""
    redis_cpu_run=null
    uses_redis=0
    case $target in wspush-redis*) uses_redis=1 ;; wspush) [ "$engine" = redis ] && uses_redis=1 ;; esac
    if [ "$uses_redis" = 1 ] && [ -n "$redis_cpu_start" ]; then
      redis_cpu_end=$(cpu_of "$redis_pid")
      [ -z "$redis_cpu_end" ] || redis_cpu_run=$(awk -v a="$redis_cpu_start" -v b="$redis_cpu_end" 'BEGIN { printf "%.2f", b - a }')
    fi
    stop_server
    line=$(grep '^{"scenario":' "$log" | tail -n 1 || true)
    [ -n "$line" ] || line='{"measured":false}'
    [ "$status" -eq 0 ] || { failed_runs=$((failed_runs + 1)); echo "  $target: exit $status; last lines:" >&2; grep -v '^{"scenario":' "$log" | tail -n 5 >&2; }
    jq -c --arg target "$target" --arg preset "$label" --argjson round "$round" --argjson status "$status" \
       --arg rev "$git_rev" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" --arg date "$(date -Iseconds)" \
       --arg engine "$engine" --argjson redis_cpu "$redis_cpu_run" '
      def div($a; $b): if $a == null or $b == null or $b == 0 then null else $a / $b end;
      . + {cmp_preset: $preset, cmp_target: $target, cmp_round: $round, cmp_exit: $status,
           cmp_rev: $rev, cmp_loadavg: $load, cmp_date: $date, cmp_engine: $engine}
      | if $redis_cpu != null then . + {redis_cpu_seconds: $redis_cpu} else . end
      | if .scenario == "fanout" then
          . + {server_cpu_ns_per_delivery: div(1e9; .deliveries_per_server_cpu_second),
               server_rss_mib: div(.server_rss_bytes; 1048576)}
        elif .scenario == "idle" then
          . + {server_rss_after_mib: div(.server_rss_after_bytes; 1048576),
               server_rss_before_mib: div(.server_rss_before_bytes; 1048576),
               server_cpu_us_per_connection: div((.server_cpu_connect_seconds // null) * 1e6; .connected)}
        elif .scenario == "churn" then
          . + {cycles_per_server_cpu_second: div(.cycles; .server_cpu_seconds),
               server_cpu_us_per_cycle: div((.server_cpu_seconds // null) * 1e6; .cycles),
               server_rss_delta_mib: div(.server_rss_delta_bytes; 1048576)}
        else . end' <<<"$line" >>"$out"
    # One line of progress per run.
    jq -r '"  round \(.cmp_round) \(.cmp_target): " +
      (if .measured != true then "NOT MEASURED (exit \(.cmp_exit))"
       elif .scenario == "fanout" then "\(.deliveries_per_server_cpu_second) deliveries/server CPU-s, p99 \(.latency_p99_us) µs, lost \(.lost), bench CPU \(.bench_cpu_seconds) s"
       elif .scenario == "idle" then "\(.server_rss_per_connection_bytes) B/connection, connected \(.connected), failed \(.failed)"
       elif .scenario == "publish" then "\(.requests_per_server_cpu_second) requests/server CPU-s, \(.requests_per_second) req/s"
       elif .scenario == "recover" then "to the last recovered message p50 \(.recover_p50_ms) ms, max \(.recover_max_ms) ms, all in \(.recover_total_ms) ms, failures \(.failures)"
       else "\(.cycles_per_server_cpu_second | floor) cycles/server CPU-s, \(.cycles_per_second) cycles/s, failures \(.failures)" end)' \
      <<<"$(tail -n 1 "$out")"
    sleep 1  # let the kernel finish closing the previous run's sockets
  done
done

load_end=$(cut -d' ' -f1-3 /proc/loadavg)
targets_json=$(printf '%s\n' "${target_list[@]}" | jq -R . | jq -sc .)
echo
echo "### $label"
echo
echo "$describe. \`wspush-bench $scenario ${run_args[*]}\`; median of $rounds run(s) per target, each on a fresh"
echo "server (server on CPU $server_cpu, bench on CPU $bench_cpu), $(date +%Y-%m-%d), load $load_start → $load_end; $versions."
[ "$engine" = redis ] && echo "The target wspush runs on the Redis engine (--engine redis)."
for t in "${target_list[@]}"; do
  case $t in
    wspush-redis) echo "wspush-redis: one wspushd on the Redis engine." ;;
    wspush-redis2) echo "wspush-redis2: two wspushd nodes on one Redis, both on CPU $server_cpu; the subscribers are spread over both (half each), the publisher posts to the first. Server CPU and RSS are the sums of both nodes." ;;
  esac
done
if [ "${#target_list[@]}" -gt 1 ]; then
  case " ${target_list[*]} " in
    *" nchan "*|*" ws "*) echo "Ratios are wspush ÷ peer: on ↑ rows above 1 is better for wspush, on ↓ rows below 1." ;;
  esac
  case " ${target_list[*]} " in
    *" wspush-"*) echo "Ratios of the wspush variants are variant ÷ base (the column's name): on ↑ rows below 1 the variant does worse, on ↓ rows above 1." ;;
  esac
fi
echo
tail -n +"$((first_line + 1))" "$out" | jq -s -r --argjson targets "$targets_json" --arg base "$base" -f "$root/bench/compare.jq"
echo
[ "$failed_runs" -eq 0 ] || { echo "compare.sh: $failed_runs run(s) did not exit 0 (see $out)" >&2; exit 1; }
