#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite: the C++ suites on a normal
# build, a smoke run of the benchmark tool, the JavaScript SDK's tests (unit, end-to-end against
# the daemon, Chromium), then the C++ suites again under AddressSanitizer +
# UndefinedBehaviorSanitizer (a separate build directory).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh test
jobs=$(nproc)

run_suite() {  # build-dir, extra cmake args…
  local dir=$1; shift
  echo "=== build: $dir"
  cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
  cmake --build "$dir"
  echo "=== test: $dir"
  (cd "$dir" && ctest --output-on-failure --timeout 600 -j "$jobs")
}

run_suite build -DCMAKE_BUILD_TYPE=RelWithDebInfo

echo "=== bench smoke: every wspush-bench scenario for a few seconds (keeps the tool working)"
bench/smoke.sh build

echo "=== JavaScript SDK: unit, end-to-end (against build/wspushd) and browser tests"
WSPUSH_DAEMON="$PWD/build/wspushd" sdk/js/scripts/ci.sh

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run_suite build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWSPUSH_SANITIZE=ON
echo "=== all suites passed"
