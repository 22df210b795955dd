#!/usr/bin/env bash
# Installs the Debian 12 packages wspush needs to build, run and test. Idempotent: apt-get runs
# only when something is missing. Usage: scripts/install-deps.sh [build|test]
set -euo pipefail

build_packages=(g++ cmake ninja-build pkg-config libboost1.81-dev nlohmann-json3-dev libspdlog-dev
                libhiredis-dev zlib1g-dev libssl-dev libgtest-dev curl ca-certificates)
test_packages=(procps)

packages=("${build_packages[@]}")
if [ "${1:-build}" = test ]; then packages+=("${test_packages[@]}"); fi

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
