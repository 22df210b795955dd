#!/usr/bin/env bash
# Starts nginx + nchan (the comparison peer, --target nchan): one master and one worker, in the
# foreground of this script. Once the worker accepts connections, writes READY_FILE:
#   {"api_port":P,"master_pid":M,"pid":W,"port":P}
# where "pid" is the worker, the process that does the work (pass it as --server-pid).
# SIGTERM/SIGINT to this script stop nginx (fast shutdown) and remove the run directory.
#
# Usage: bench/peers/nchan/start.sh PORT READY_FILE      (PORT 0: a free port)
# Environment: DEFLATE=1 stores a deflated copy of each message for subscribers that negotiated
#   permessage-deflate; RUN_DIR=… keeps config, pid and error log there (default: a temp dir,
#   removed on exit).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -eq 2 ] || { echo "usage: $0 PORT READY_FILE" >&2; exit 2; }
port=$1 ready=$2
if ! command -v nginx >/dev/null || [ ! -f /usr/lib/nginx/modules/ngx_nchan_module.so ]; then
  echo "nchan peer: run bench/peers/install.sh first (nginx, libnginx-mod-nchan)" >&2; exit 1
fi

if [ "$port" = 0 ]; then  # nginx cannot listen on port 0: ask the kernel for a free one
  port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
fi

keep_run_dir=1
if [ -z "${RUN_DIR:-}" ]; then RUN_DIR=$(mktemp -d /tmp/wspush-nchan.XXXXXX); keep_run_dir=0; fi
mkdir -p "$RUN_DIR"
chmod 755 "$RUN_DIR"   # the worker runs as www-data when we are root

# One descriptor per connection: take the hard limit (idle-19k needs ~19,000).
ulimit -n "$(ulimit -Hn)"
nofile=$(ulimit -n)
user_line="# (not root: nginx runs as the current user)"
[ "$(id -u)" -eq 0 ] && user_line="user www-data www-data;"
deflate=off
[ "${DEFLATE:-0}" = 1 ] && deflate=on
# worker_connections: twice the descriptor limit. nchan takes connection slots beyond the sockets
# (with worker_connections = the limit, idle-19k failed ~290 handshakes: "worker_connections are
# not enough, reusing connections"); nginx preallocates the slots, which shows in RSS before the run.
sed -e "s|@PORT@|$port|g" -e "s|@RUNDIR@|$RUN_DIR|g" -e "s|@NOFILE@|$nofile|g" \
    -e "s|@WORKER_CONNECTIONS@|$((nofile * 2))|g" -e "s|@DEFLATE@|$deflate|g" \
    -e "s|@USER@|$user_line|g" "$here/nginx.conf.in" > "$RUN_DIR/nginx.conf"

master=""
cleanup() {
  trap - EXIT INT TERM
  if [ -n "$master" ] && kill -0 "$master" 2>/dev/null; then
    kill -TERM "$master" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$master" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$master" 2>/dev/null || true
  fi
  [ "$keep_run_dir" = 1 ] || rm -rf "$RUN_DIR"
}
trap cleanup EXIT
trap 'exit 143' INT TERM

nginx -p "$RUN_DIR" -c "$RUN_DIR/nginx.conf" -e "$RUN_DIR/error.log" &
master=$!

# Wait (at most 10 s) for the worker and for the port to accept connections.
worker=""
for _ in $(seq 100); do
  kill -0 "$master" 2>/dev/null || { cat "$RUN_DIR/error.log" >&2; echo "nchan peer: nginx exited" >&2; exit 1; }
  worker=$(pgrep -P "$master" | head -n 1 || true)
  if [ -n "$worker" ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  worker=""
  sleep 0.1
done
[ -n "$worker" ] || { cat "$RUN_DIR/error.log" >&2; echo "nchan peer: nginx did not come up" >&2; exit 1; }

printf '{"api_port":%d,"master_pid":%d,"pid":%d,"port":%d}\n' "$port" "$master" "$worker" "$port" > "$ready.tmp"
mv "$ready.tmp" "$ready"
echo "nchan peer listening on 127.0.0.1:$port (master $master, worker $worker, deflate $deflate, run dir $RUN_DIR)"
wait "$master"
