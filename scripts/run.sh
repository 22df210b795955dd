#!/usr/bin/env bash
# Installs what is missing, builds wspushd and starts it on the shipped development config
# (in-memory engine). Extra arguments go to wspushd, e.g. scripts/run.sh --port 9000
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh build
cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DWSPUSH_BUILD_TESTS=OFF >/dev/null
cmake --build build-release --target wspushd

# The chat demo (sdk/js/examples/chat) needs the SDK's browser bundle beside it.
(cd sdk/js && npm ci --no-audit --no-fund --loglevel=error && node scripts/build.mjs) >/dev/null

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
