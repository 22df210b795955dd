#!/usr/bin/env bash
# Starts the Node `ws` comparison peer in the foreground (exec: the pid is node's).
# Usage: bench/peers/ws/start.sh PORT READY_FILE      (PORT 0: a free port)
# Environment: DEFLATE=1 offers permessage-deflate. Writes {"api_port","pid","port"} to READY_FILE
# once listening. Needs `bench/peers/install.sh` (npm ci) first.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -eq 2 ] || { echo "usage: $0 PORT READY_FILE" >&2; exit 2; }
[ -d "$here/node_modules/ws" ] || { echo "ws peer: run bench/peers/install.sh first" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)"   # idle-19k: one descriptor per connection
args=(--port "$1" --ready-file "$2")
[ "${DEFLATE:-0}" = 1 ] && args+=(--deflate)
exec node "$here/server.js" "${args[@]}"
