# bench/compare.sh's table: reads the run records of one comparison (jq -s: an array of the
# bench's JSON lines, each with the fields compare.sh adds: cmp_target, cmp_round, cmp_exit, ...)
# and prints a markdown table with the median of each figure per target, and wspush/peer ratios.
# The wspush variants (wspush-redis, wspush-redis2: names that start with "wspush-") get the ratio
# variant/base instead, base being wspush if it ran, else the first target.
#
# Arguments: --argjson targets '["wspush","nchan","ws"]' [--arg base TARGET]
#
# Figures: [key, label, direction, aggregate, format, key figure?]
#   direction "+": higher is better, "-": lower is better, "": for information
#   aggregate "median" or "max" (over the measured runs of a target)

def figures($scenario):
  if $scenario == "fanout" then [
    ["deliveries_per_server_cpu_second", "deliveries per server CPU-s", "+", "median", "int", true],
    ["server_cpu_ns_per_delivery", "server CPU per delivery (ns)", "-", "median", "int", false],
    ["latency_p50_us", "latency p50 (µs)", "-", "median", "int", false],
    ["latency_p99_us", "latency p99 (µs)", "-", "median", "int", true],
    ["latency_p999_us", "latency p99.9 (µs)", "-", "median", "int", false],
    ["latency_max_us", "latency max (µs)", "-", "median", "int", false],
    ["deliveries_per_second", "deliveries/s (wall)", "+", "median", "int", false],
    ["server_cpu_seconds", "server CPU (s)", "-", "median", "s2", false],
    ["redis_cpu_seconds", "redis-server CPU, whole run (s)", "-", "median", "s2", false],
    ["server_rss_mib", "server RSS at the end (MiB)", "-", "median", "f1", false],
    ["publish_max_lag_ms", "publisher behind schedule (ms)", "", "median", "f1", false],
    ["bench_cpu_seconds", "bench CPU (s)", "", "median", "s2", false],
    ["deliveries_per_bench_cpu_second", "deliveries per bench CPU-s", "", "median", "int", false],
    ["server_runqueue_wait_seconds", "server waited for a CPU (s)", "", "median", "s2", false],
    ["bench_runqueue_wait_seconds", "bench waited for a CPU (s)", "", "median", "s2", false],
    ["lost", "lost (worst run)", "", "max", "int", false],
    ["duplicated", "duplicated (worst run)", "", "max", "int", false],
    ["dropped", "dropped connections (worst run)", "", "max", "int", false]
  ]
  elif $scenario == "idle" then [
    ["server_rss_per_connection_bytes", "server RSS per connection (bytes)", "-", "median", "int", true],
    ["server_rss_after_mib", "server RSS with all connected (MiB)", "-", "median", "f1", false],
    ["server_rss_before_mib", "server RSS before (MiB)", "-", "median", "f1", false],
    ["server_cpu_us_per_connection", "server CPU per connection (µs)", "-", "median", "int", false],
    ["connect_seconds", "connect phase (s)", "-", "median", "s2", false],
    ["connect_p99_ms", "connect+subscribe p99 (ms)", "-", "median", "f1", false],
    ["bench_cpu_seconds", "bench CPU (s)", "", "median", "s2", false],
    ["connected", "connected (worst run)", "", "min", "int", false],
    ["failed", "failed (worst run)", "", "max", "int", false],
    ["dropped", "dropped connections (worst run)", "", "max", "int", false]
  ]
  elif $scenario == "publish" then [
    ["requests_per_server_cpu_second", "requests per server CPU-s", "+", "median", "int", true],
    ["requests_per_second", "requests/s (wall)", "+", "median", "int", false],
    ["request_latency_p50_us", "request latency p50 (µs)", "-", "median", "int", false],
    ["request_latency_p99_us", "request latency p99 (µs)", "-", "median", "int", false],
    ["subscriber_latency_p99_us", "subscriber latency p99 (µs)", "-", "median", "int", false],
    ["server_cpu_seconds", "server CPU (s)", "-", "median", "s2", false],
    ["redis_cpu_seconds", "redis-server CPU, whole run (s)", "-", "median", "s2", false],
    ["bench_cpu_seconds", "bench CPU (s)", "", "median", "s2", false],
    ["server_runqueue_wait_seconds", "server waited for a CPU (s)", "", "median", "s2", false],
    ["bench_runqueue_wait_seconds", "bench waited for a CPU (s)", "", "median", "s2", false],
    ["errors", "errors (worst run)", "", "max", "int", false],
    ["unconfirmed", "unanswered (worst run)", "", "max", "int", false],
    ["subscriber_lost", "subscriber lost (worst run)", "", "max", "int", false]
  ]
  elif $scenario == "churn" then [
    ["cycles_per_server_cpu_second", "cycles per server CPU-s", "+", "median", "int", true],
    ["server_cpu_us_per_cycle", "server CPU per cycle (µs)", "-", "median", "int", false],
    ["cycles_per_second", "cycles/s (wall)", "+", "median", "int", false],
    ["cycle_p50_us", "cycle p50 (µs)", "-", "median", "int", false],
    ["cycle_p99_us", "cycle p99 (µs)", "-", "median", "int", false],
    ["server_rss_delta_mib", "server RSS change (MiB)", "-", "median", "f1", false],
    ["bench_cpu_seconds", "bench CPU (s)", "", "median", "s2", false],
    ["server_runqueue_wait_seconds", "server waited for a CPU (s)", "", "median", "s2", false],
    ["bench_runqueue_wait_seconds", "bench waited for a CPU (s)", "", "median", "s2", false],
    ["failures", "failed cycles (worst run)", "", "max", "int", false]
  ]
  elif $scenario == "recover" then [
    ["recover_p50_ms", "to the last recovered message p50 (ms)", "-", "median", "s2", true],
    ["recover_p99_ms", "to the last recovered message p99 (ms)", "-", "median", "s2", false],
    ["recover_max_ms", "to the last recovered message max (ms)", "-", "median", "s2", true],
    ["recover_total_ms", "all clients recovered (ms)", "-", "median", "s2", true],
    ["subscribed_p50_ms", "to the subscribed reply p50 (ms)", "-", "median", "s2", false],
    ["recovered_messages_per_second", "recovered messages/s (wall)", "+", "median", "int", false],
    ["missed_per_client", "missed per client", "", "median", "int", false],
    ["server_cpu_seconds", "server CPU (s)", "-", "median", "s2", false],
    ["redis_cpu_seconds", "redis-server CPU, whole run (s)", "-", "median", "s2", false],
    ["bench_cpu_seconds", "bench CPU (s)", "", "median", "s2", false],
    ["server_runqueue_wait_seconds", "server waited for a CPU (s)", "", "median", "s2", false],
    ["bench_runqueue_wait_seconds", "bench waited for a CPU (s)", "", "median", "s2", false],
    ["failures", "failed clients (worst run)", "", "max", "int", false]
  ]
  else error("unknown scenario \($scenario)") end;

def median: sort | if length == 0 then null
  elif length % 2 == 1 then .[(length - 1) / 2]
  else (.[length / 2 - 1] + .[length / 2]) / 2 end;

def commas: tostring | explode | reverse
  | [foreach .[] as $c ({n: 0, out: []};
      {n: (.n + 1), out: (if .n > 0 and .n % 3 == 0 then [44, $c] else [$c] end)};
      .out)] | add | reverse | implode;

def fmt($f):
  if . == null then "–"
  elif $f == "int" then (if . < 0 then "-" + (-(. | round) | commas) else (round | commas) end)
  elif $f == "s2" then ((. * 100 | round) / 100 | tostring)
  elif $f == "f1" then ((. * 10 | round) / 10 | tostring)
  else tostring end;

def ratio($a; $b):
  if $a == null or $b == null or $b == 0 then "–"
  else (($a / $b) * 100 | round) / 100 | tostring + "×" end;

. as $runs
| ($runs | map(select(.scenario != null)) | .[0].scenario) as $scenario
| if $scenario == null then "no measured run" | halt_error(1) else . end
| ($targets | map(. as $t | {key: $t, value: ($runs | map(select(.cmp_target == $t)))}) | from_entries) as $by
| (if ($ARGS.named.base // "") != "" then $ARGS.named.base
   elif ($targets | index("wspush")) != null then "wspush" else $targets[0] end) as $base
| ($targets | map(select(. != $base))) as $peers
| def variant: startswith("wspush");
  def colname: if variant then . + "/" + $base else $base + "/" + . end;
  (["figure"] + $targets + ($peers | map(colname))) as $head
| ($head | "| " + join(" | ") + " |"),
  ($head | map("---") | "|" + join("|") + "|"),
  (figures($scenario)[] as [$key, $title, $dir, $agg, $f, $isKey]
    | ($targets | map(. as $t | $by[$t] | map(select(.measured == true)) | map(.[$key]) | map(select(. != null))
        | if length == 0 then null
          elif $agg == "max" then max
          elif $agg == "min" then min
          else median end)) as $values
    | select($values | any(. != null))   # e.g. "behind schedule" exists at a fixed rate only
    | ($targets | to_entries | map({key: .value, value: $values[.key]}) | from_entries) as $v
    | (if $dir == "+" then " ↑" elif $dir == "-" then " ↓" else "" end) as $arrow
    | (if $isKey then "**" + $title + "**" + $arrow else $title + $arrow end) as $row
    | [$row] + ($values | map(fmt($f)))
      + ($peers | map(if $dir == "" then "" elif variant then ratio($v[.]; $v[$base]) else ratio($v[$base]; $v[.]) end))
    | "| " + join(" | ") + " |"),
  (["runs measured"] + ($targets | map(. as $t | $by[$t] | "\(map(select(.measured == true)) | length)/\(length)"))
    + ($peers | map(""))
    | "| " + join(" | ") + " |")
