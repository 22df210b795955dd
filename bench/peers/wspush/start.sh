#!/usr/bin/env bash
# Starts wspushd for bench/compare.sh in the foreground (exec: the pid is wspushd's), with the
# development config (config/wspush.json: anonymous clients, compression enabled) and one event
# loop. wspushd writes {"api_port","pid","port"} to READY_FILE once listening.
# Usage: bench/peers/wspush/start.sh PORT READY_FILE      (PORT 0: a free port)
# Environment: BUILD_DIR (default build-bench, relative to the repository), THREADS (default 1),
#   CONFIG (default config/wspush.json). DEFLATE is ignored: compression is on in the config, and a
#   connection uses it only when the client offers it (wspush-bench --deflate).
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
[ $# -eq 2 ] || { echo "usage: $0 PORT READY_FILE" >&2; exit 2; }
build=${BUILD_DIR:-build-bench}
case $build in /*) ;; *) build="$root/$build" ;; esac
config=${CONFIG:-$root/config/wspush.json}
[ -x "$build/wspushd" ] || { echo "wspush: $build/wspushd is missing (cmake --build $build --target wspushd)" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)"   # idle-19k: one descriptor per connection
exec "$build/wspushd" --config "$config" --port "$1" --threads "${THREADS:-1}" --log-level warn \
    --ready-file "$2"
