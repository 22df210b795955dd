#!/usr/bin/env bash
# Proves that the images build and work, with nothing from a registry: builds the local
# debian:bookworm(-slim) bases if missing (make-local-base.sh), the wspushd and redis images, then
#   1. checks the wspushd image's metadata (user, stop signal, health check, ports);
#   2. runs one node: --version, becomes healthy, runs as uid 10001, /healthz answers, the API
#      refuses non-loopback clients without keys, `docker stop` drains and exits 0;
#   3. runs redis and two nodes on the Redis engine: a WebSocket client on node 1 receives what
#      is POSTed to node 2's API with its key;
#   4. with docker/nginx/ present (or NGINX_DIR, a folder holding render-conf.sh and wspush.conf to
#      use in its place), runs compose.yaml: a wss:// client through nginx receives what is
#      POSTed to nginx's API port, then the service scales to 3 nodes and nginx reloads.
# Usage: docker/verify-image.sh   (root or the docker group; Node.js >= 20 for the WebSocket client)
# Environment: BUILD_JOBS (default 1) and BUILD_NICE (default 19) for the compile;
# DOCKER_BUILD_NETWORK (default: host, because a daemon run with --bridge=none has no default
# network for RUN apt-get; "default" on an ordinary daemon); NGINX_DIR as above.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

jobs=${BUILD_JOBS:-1}
nice_level=${BUILD_NICE:-19}
net=${DOCKER_BUILD_NETWORK:-host}
prefix=wspush-verify
# A docker CLI without the buildx plugin cannot use BuildKit; the classic builder does the job.
if ! docker buildx version >/dev/null 2>&1; then export DOCKER_BUILDKIT=0; fi
if docker compose version >/dev/null 2>&1; then compose=(docker compose); else compose=(docker-compose); fi

say() { printf '\n== %s\n' "$*"; }
fail() { echo "verify-image: FAILED: $*" >&2; exit 1; }
work=$(mktemp -d)
cleanup() {
  docker rm -f -v "$prefix-single" "$prefix-redis" "$prefix-node1" "$prefix-node2" >/dev/null 2>&1 || true
  docker network rm "$prefix" >/dev/null 2>&1 || true
  if [ -f "$work/ctx/docker/compose.yaml" ]; then
    "${compose[@]}" -p "$prefix" -f "$work/ctx/docker/compose.yaml" down -v -t 5 >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# Subscribes to a channel and prints the first publication's data, or fails after 20 s.
cat >"$work/subscribe.mjs" <<'EOF'
const [url, channel] = process.argv.slice(2);
const ws = new WebSocket(url);
const timer = setTimeout(() => { console.error("no publication within 20 s"); process.exit(1); }, 20000);
ws.onerror = (e) => { console.error("websocket error", e.message ?? e); process.exit(1); };
ws.onopen = () => ws.send(JSON.stringify({ id: 1, type: "connect" }) + "\n" +
                          JSON.stringify({ id: 2, type: "subscribe", channel }));
ws.onmessage = (event) => {
  for (const line of String(event.data).split("\n")) {
    const m = JSON.parse(line);
    if (m.type === "connected") console.log(`connected to node ${m.node}`);
    if (m.type === "subscribed") console.log("SUBSCRIBED");
    if (m.type === "message") { console.log(`received ${JSON.stringify(m.data)}`); clearTimeout(timer); ws.close(); process.exit(0); }
  }
};
EOF
# Starts the subscriber in the background and waits until it has subscribed.
subscribe() {
  local log=$1; shift
  node --experimental-websocket --no-warnings "$work/subscribe.mjs" "$@" >"$log" 2>&1 &
  sub_pid=$!
  for _ in $(seq 100); do grep -q SUBSCRIBED "$log" && return 0; sleep 0.1; done
  cat "$log"; fail "the subscriber did not subscribe"
}
wait_healthy() {
  for _ in $(seq 60); do
    [ "$(docker inspect -f '{{.State.Health.Status}}' "$1")" = healthy ] && return 0
    sleep 1
  done
  docker logs "$1" | tail -20; fail "$1 did not become healthy"
}
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
ip_of() { docker inspect -f "{{(index .NetworkSettings.Networks \"$prefix\").IPAddress}}" "$1"; }

if ! docker image inspect debian:bookworm debian:bookworm-slim >/dev/null 2>&1; then
  say "making the local debian:bookworm and debian:bookworm-slim bases"
  docker/make-local-base.sh
fi

say "building wspush/wspushd:local (BUILD_JOBS=$jobs, BUILD_NICE=$nice_level, network $net)"
time docker build --network "$net" --build-arg BUILD_JOBS="$jobs" --build-arg BUILD_NICE="$nice_level" \
  -f docker/Dockerfile -t wspush/wspushd:local .
say "building wspush/redis:local"
docker build --network "$net" -f docker/redis.Dockerfile -t wspush/redis:local .
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep '^wspush/'

say "1. image metadata"
docker image inspect -f 'user={{.Config.User}} stopsignal={{.Config.StopSignal}} ports={{json .Config.ExposedPorts}}
healthcheck={{json .Config.Healthcheck.Test}}
entrypoint={{json .Config.Entrypoint}}' wspush/wspushd:local | tee "$work/meta"
grep -q 'user=10001:10001 stopsignal=SIGTERM' "$work/meta" || fail "user or stop signal"
grep -q wspush-healthcheck "$work/meta" || fail "health check"

say "2. one node (memory engine)"
docker network create "$prefix" >/dev/null
docker run --rm wspush/wspushd:local --version
docker run -d --name "$prefix-single" --network "$prefix" wspush/wspushd:local >/dev/null
wait_healthy "$prefix-single"
echo "health: healthy; uid in the container: $(docker exec "$prefix-single" id -u)"
[ "$(docker exec "$prefix-single" id -u)" = 10001 ] || fail "not uid 10001"
ip=$(ip_of "$prefix-single")
echo "GET http://$ip:8080/healthz -> $(curl -sS "http://$ip:8080/healthz")"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://$ip:8081/api/publish" -d '{"channel":"a","data":1}')
echo "POST /api/publish from outside the container without keys -> $code"
[ "$code" = 403 ] || fail "the API without keys answered $code to a non-loopback client"
start=$(date +%s.%N)
docker stop "$prefix-single" >/dev/null
echo "docker stop took $(elapsed "$start") s, exit code $(docker inspect -f '{{.State.ExitCode}}' "$prefix-single")"
docker logs "$prefix-single" 2>&1 | grep -E 'SIGTERM|drain|stopped' | tail -3
[ "$(docker inspect -f '{{.State.ExitCode}}' "$prefix-single")" = 0 ] || fail "exit code after docker stop"
docker rm "$prefix-single" >/dev/null

say "3. redis and two nodes on the Redis engine"
key=verify-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
docker run -d --name "$prefix-redis" --network "$prefix" --network-alias redis wspush/redis:local >/dev/null
wait_healthy "$prefix-redis"
for n in 1 2; do
  docker run -d --name "$prefix-node$n" --network "$prefix" -e WSPUSH_NODE_NAME=node$n \
    -e WSPUSH_ENGINE=redis -e WSPUSH_REDIS_ADDRESSES='["redis:6379"]' -e WSPUSH_API_KEYS="[\"$key\"]" \
    -e WSPUSH_CLIENT_ALLOW_ANONYMOUS=true -e WSPUSH_THREADS=1 wspush/wspushd:local >/dev/null
done
wait_healthy "$prefix-node1"
wait_healthy "$prefix-node2"
ip1=$(ip_of "$prefix-node1")
ip2=$(ip_of "$prefix-node2")
echo "GET node2 /api/nodes -> $(curl -sS -H "Authorization: Bearer $key" "http://$ip2:8081/api/nodes")"
subscribe "$work/sub1.log" "ws://$ip1:8080/ws" news
echo "POST node2 /api/publish -> $(curl -sS -X POST "http://$ip2:8081/api/publish" -H "Authorization: Bearer $key" \
  -H 'Content-Type: application/json' -d '{"channel":"news","data":{"text":"via node2"}}')"
wait "$sub_pid" || { cat "$work/sub1.log"; fail "node 1's subscriber got nothing"; }
cat "$work/sub1.log"
docker rm -f -v "$prefix-node1" "$prefix-node2" "$prefix-redis" >/dev/null
docker network rm "$prefix" >/dev/null

say "4. compose.yaml: nginx in front of the nodes"
nginx_dir=${NGINX_DIR:-$repo/docker/nginx}
if [ ! -x "$nginx_dir/render-conf.sh" ]; then
  echo "SKIPPED: $nginx_dir/render-conf.sh does not exist (docker/nginx/ comes from another branch;"
  echo "NGINX_DIR=folder runs this step with another render-conf.sh)"
  exit 0
fi
# A copy of the build context with the chosen nginx folder, so that a stand-in never lands in
# the working tree.
mkdir -p "$work/ctx"
tar -C "$repo" -c CMakeLists.txt include src bench docker packaging config .dockerignore | tar -C "$work/ctx" -x
rm -rf "$work/ctx/docker/nginx"
cp -r "$nginx_dir" "$work/ctx/docker/nginx"
docker build --network "$net" -f "$work/ctx/docker/nginx.Dockerfile" -t wspush/nginx:local "$work/ctx"
export WSPUSH_API_KEY=$key WSPUSH_HTTPS_PORT=${WSPUSH_HTTPS_PORT:-18443} WSPUSH_API_PORT=${WSPUSH_API_PORT:-18081}
dc=("${compose[@]}" -p "$prefix" -f "$work/ctx/docker/compose.yaml")
"${dc[@]}" up -d
for _ in $(seq 60); do
  "${dc[@]}" exec -T nginx test -s /var/lib/wspush-nginx/tls/cert.pem 2>/dev/null && break
  sleep 1
done
"${dc[@]}" exec -T nginx cat /var/lib/wspush-nginx/tls/cert.pem >"$work/cert.pem"
openssl x509 -in "$work/cert.pem" -noout -subject -ext subjectAltName
api=http://127.0.0.1:$WSPUSH_API_PORT
for _ in $(seq 60); do curl -sf -H "Authorization: Bearer $key" "$api/api/nodes" >/dev/null && break; sleep 1; done
echo "GET $api/api/nodes -> $(curl -sS -H "Authorization: Bearer $key" "$api/api/nodes")"
NODE_EXTRA_CA_CERTS=$work/cert.pem subscribe "$work/sub2.log" "wss://localhost:$WSPUSH_HTTPS_PORT/ws" news
echo "POST $api/api/publish -> $(curl -sS -X POST "$api/api/publish" \
  -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -d '{"channel":"news","data":{"text":"via nginx"}}')"
wait "$sub_pid" || { cat "$work/sub2.log"; fail "the wss subscriber got nothing"; }
cat "$work/sub2.log"

"${dc[@]}" up -d --scale wspush=3
"${dc[@]}" exec -T nginx wspush-nginx reload
sleep 3
nodes=$(curl -sS -H "Authorization: Bearer $key" "$api/api/nodes")
echo "after --scale wspush=3 and the reload: $nodes"
declare -A seen=()
for _ in $(seq 12); do
  NODE_EXTRA_CA_CERTS=$work/cert.pem timeout 5 node --experimental-websocket --no-warnings -e "
    const ws = new WebSocket('wss://localhost:$WSPUSH_HTTPS_PORT/ws');
    ws.onopen = () => ws.send('{\"id\":1,\"type\":\"connect\"}');
    ws.onmessage = (e) => { console.log(JSON.parse(e.data).node); process.exit(0); };" >"$work/node" || true
  seen[$(cat "$work/node")]=1
done
echo "12 connections through nginx reached ${#seen[@]} distinct nodes: ${!seen[*]}"
[ "${#seen[@]}" -ge 3 ] || fail "nginx did not spread connections over the 3 nodes"

start=$(date +%s.%N)
"${dc[@]}" stop -t 30 wspush
echo "compose stop of the nodes took $(elapsed "$start") s"
"${dc[@]}" ps
echo
echo "verify-image: all checks passed"
