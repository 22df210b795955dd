#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite: the C++ suites on a normal
# build, a smoke run of the benchmark tool, the JavaScript SDK's tests (unit, end-to-end against
# the daemon, Chromium), then the C++ suites again under AddressSanitizer +
# UndefinedBehaviorSanitizer (a separate build directory).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh test
jobs=$(nproc)

run_suite() {  # build-dir, targets ("all", or a space-separated list), extra cmake args…
  local dir=$1 targets=$2; shift 2
  echo "=== build: $dir ($targets)"
  cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
  # shellcheck disable=SC2086 # the targets are a word list
  cmake --build "$dir" --target $targets
  echo "=== test: $dir"
  (cd "$dir" && ctest --output-on-failure --timeout 600 -j "$jobs")
}

run_suite build all -DCMAKE_BUILD_TYPE=RelWithDebInfo

echo "=== bench smoke: every wspush-bench scenario for a few seconds (keeps the tool working)"
bench/smoke.sh build

echo "=== JavaScript SDK: unit, end-to-end (against build/wspushd) and browser tests"
WSPUSH_DAEMON="$PWD/build/wspushd" sdk/js/scripts/ci.sh

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# What the suites run, not the benchmark tool; -O1 and line tables only: the sanitizer build was
# half of the test command's time on 2 cores, and its reports need no more than file:line.
run_suite build-asan "wspushd wspush_unit_tests wspush_integration_tests" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DWSPUSH_SANITIZE=ON
echo "=== all suites passed"
