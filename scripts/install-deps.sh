#!/usr/bin/env bash
# Installs the Debian 12 packages wspush needs to build, run and test. Idempotent: apt-get runs
# only when something is missing. Usage: scripts/install-deps.sh [build|test]
#   build: the C++ toolchain and libraries, and Node.js + npm for the JavaScript SDK's bundle
#   test:  also Chromium (the SDK's browser test), jq (bench/smoke.sh), redis-server and
#          redis-sentinel (the Redis client's tests run real servers), and clang 14 with its
#          runtimes (the sanitizer build and the libFuzzer targets)
set -euo pipefail

build_packages=(g++ cmake ninja-build pkg-config libboost1.81-dev nlohmann-json3-dev libspdlog-dev
                libhiredis-dev zlib1g-dev libssl-dev libgtest-dev curl ca-certificates)
test_packages=(procps jq chromium redis-server redis-sentinel clang libclang-rt-14-dev)

packages=("${build_packages[@]}")
if [ "${1:-build}" = test ]; then packages+=("${test_packages[@]}"); fi

# Node.js may come from elsewhere than Debian (a newer release); only a missing `node` or `npm`
# asks for Debian's. The SDK runs on Node 18, but its tests use Node 20's fake timers: see below.
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

# Debian 12's Node is 18: the SDK's tests need 20, which the npm registry also ships.
if [ "${1:-build}" = test ] && ! node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)'; then
  echo "installing Node.js 20 from the npm registry (found $(node --version))"
  $sudo npm install -g --no-audit --no-fund --loglevel=error node@20
  hash -r
fi
