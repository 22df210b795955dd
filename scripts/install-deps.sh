#!/usr/bin/env bash
# Installs the Debian 12 packages wspush needs to build, run and test. Idempotent: apt-get runs
# only when something is missing. Usage: scripts/install-deps.sh [build|test]
#   build: the C++ toolchain and libraries, and Node.js + npm for the JavaScript SDK's bundle
#   test:  also Chromium (the SDK's browser test), jq (bench/smoke.sh), redis-server and
#          redis-sentinel (the Redis client's tests run real servers), nginx (the nginx tests run
#          docker/nginx/wspush.conf for real), and clang 14 with its runtimes (the sanitizer build
#          and the libFuzzer targets)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

build_packages=(g++ cmake ninja-build pkg-config libboost1.81-dev nlohmann-json3-dev libspdlog-dev
                libhiredis-dev liburing-dev zlib1g-dev libssl-dev libgtest-dev curl ca-certificates)
test_packages=(procps jq chromium redis-server redis-sentinel nginx clang libclang-rt-14-dev)

packages=("${build_packages[@]}")
if [ "${1:-build}" = test ]; then packages+=("${test_packages[@]}"); fi

# Node.js may come from elsewhere than Debian (a newer release); only a missing `node` or `npm`
# asks for Debian's. The SDK runs on Node 18, but its tests use Node 20's mock timers: see below.
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Debian's nginx package enables and starts a system nginx serving a welcome page on port 80 of
# every address. The tests start their own nginx on loopback ports; a service we installed only
# for them is turned off again, not left listening. An nginx that was installed before is the
# machine's own business and left alone. (Where services cannot start, as in containers, nothing
# runs and there is nothing to do.)
if [[ " ${missing[*]} " == *" nginx "* ]] && command -v systemctl >/dev/null 2>&1 &&
   systemctl is-enabled --quiet nginx 2>/dev/null; then
  echo "disabling the system nginx service the nginx package started (the tests run their own)"
  $sudo systemctl disable --now nginx >/dev/null 2>&1 || echo "note: could not disable nginx.service" >&2
fi

# Debian 12's Node is 18; the SDK's tests use Node 20's mock timers (node:test). Node 20 from the
# npm registry goes into the project (.cache/node20, ~150 MB), for those tests only: installed over
# the system's (npm install -g) it would replace Debian's Node for every user, and it does not read
# the system's CA store, so npm behind a TLS-inspecting proxy would then fail where Debian's works.
# scripts/test.sh runs the SDK's tests with it; everything else keeps the system's Node.
node20="$root/.cache/node20"
if [ "${1:-build}" = test ] && ! node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' &&
  [ ! -x "$node20/node_modules/.bin/node" ]; then
  echo "installing Node.js 20 from the npm registry into $node20 (the system has $(node --version)), for the SDK's tests"
  npm install --prefix "$node20" --no-save --no-audit --no-fund --loglevel=error node@20
fi
