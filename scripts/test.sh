#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite: the C++ suites on a release
# build, a smoke run of the benchmark tool, the JavaScript SDK's tests (unit, end-to-end against
# the daemon, Chromium), then the C++ suites again under AddressSanitizer +
# UndefinedBehaviorSanitizer (a separate clang build directory, which also builds the libFuzzer
# targets), and each fuzzer for a bounded time.
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

# The flags the daemon ships with (scripts/run.sh, the container): no debug information, which was
# a third of each file's compile time.
run_suite build all -DCMAKE_BUILD_TYPE=Release

echo "=== bench smoke: every wspush-bench scenario for a few seconds (keeps the tool working)"
bench/smoke.sh build

echo "=== JavaScript SDK: unit, end-to-end (against build/wspushd) and browser tests"
# On Node 20 or later: the system's, or the one install-deps.sh put into .cache/node20.
test_node=node
if ! node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)'; then
  test_node="$PWD/.cache/node20/node_modules/.bin/node"
fi
WSPUSH_DAEMON="$PWD/build/wspushd" WSPUSH_TEST_NODE="$test_node" sdk/js/scripts/ci.sh

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# What the suites run, and the fuzz targets; not the benchmark tool. Clang (a file at -O1 in 80 %
# of GCC's time; the test files at -O0 in half), line tables only: the sanitizer build was half of
# the test command's time on 2 cores, and its reports need only file:line. Not -O0 for the code
# under test: the daemon is then too slow for the chaos and large-recovery scenarios.
run_suite build-asan "wspushd wspush_unit_tests wspush_integration_tests wspush_fuzz_targets" \
  -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
  -DWSPUSH_SANITIZE=ON -DWSPUSH_FUZZ=ON

echo "=== fuzz: each libFuzzer target for 30 s on its seed corpus (docs/fuzzing.md)"
scripts/fuzz.sh 30 build-asan
echo "=== all suites passed"
