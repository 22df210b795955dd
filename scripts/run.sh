#!/usr/bin/env bash
# Installs what is missing, builds wspushd and starts it on the shipped development config
# (in-memory engine). Extra arguments go to wspushd, e.g. scripts/run.sh --port 9000
set -euo pipefail
cd "$(dirname "$0")/.."

# Runs one set-up step; when it fails, says which before the script stops.
step() {
  local what=$1; shift
  "$@" || { status=$?; echo "run.sh: $what failed (exit status $status)" >&2; exit "$status"; }
}

step "installing the Debian packages (scripts/install-deps.sh build)" scripts/install-deps.sh build
step "configuring the build (cmake, build-release)" \
  cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DWSPUSH_BUILD_TESTS=OFF >/dev/null
step "building wspushd (build-release)" cmake --build build-release --target wspushd

# The chat demo (sdk/js/examples/chat) needs the SDK's browser bundle beside it. Only the first
# start, or one after the SDK changed, needs npm and the network.
sdk_sources=(sdk/js/package-lock.json sdk/js/scripts/build.mjs)
mapfile -t -O 2 sdk_sources < <(find sdk/js/src -type f)
newer_than() {  # file, then sources: whether the file is missing or older than a source
  [ -e "$1" ] || return 0
  local file=$1; shift
  [ -n "$(find "$@" -newer "$file" -print -quit)" ]
}
if newer_than sdk/js/node_modules/.package-lock.json sdk/js/package-lock.json; then
  step "installing the SDK's npm packages (npm ci in sdk/js)" \
    bash -c 'cd sdk/js && npm ci --no-audit --no-fund --loglevel=error >/dev/null'
fi
if newer_than sdk/js/examples/chat/wspush.min.js "${sdk_sources[@]}"; then
  step "building the SDK's browser bundle (node scripts/build.mjs in sdk/js)" \
    bash -c 'cd sdk/js && node scripts/build.mjs >/dev/null'
fi

port=8080
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  if [ "${args[$i]}" = --port ] && [ $((i + 1)) -lt ${#args[@]} ]; then port=${args[$((i + 1))]}; fi
done

cat <<MSG

wspushd is starting on 127.0.0.1:${port} (development config: config/wspush.json).

  Connect a WebSocket client, then type the commands:
    npx --yes wscat@6 -c ws://127.0.0.1:${port}/ws
    > {"id":1,"type":"connect"}
    > {"id":2,"type":"subscribe","channel":"news"}

  Publish from another terminal:
    curl -s -X POST http://127.0.0.1:${port}/api/publish -H 'Content-Type: application/json' \\
         -d '{"channel":"news","data":{"text":"hello"}}'

  Chat demo in a browser: http://127.0.0.1:${port}/  (open it twice and chat)

  Health and metrics: curl http://127.0.0.1:${port}/healthz ; curl http://127.0.0.1:${port}/metrics
  Stop with Ctrl-C (graceful drain).

MSG
exec build-release/wspushd --config config/wspush.json --static-root sdk/js/examples/chat "$@"
