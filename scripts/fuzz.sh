#!/usr/bin/env bash
# Runs every libFuzzer target (tests/fuzz, docs/fuzzing.md) for a bounded time on a scratch copy
# of its seed corpus, one after the other, and fails if any of them finds a crash, a leak, a
# timeout or an out-of-memory. The repository is never written to: what a run adds to the corpus
# and any crashing input stay in the scratch directory, whose path a failure prints.
#   scripts/fuzz.sh [seconds-per-target (60)] [build-dir (build-asan)]
# The build directory is a clang build with -DWSPUSH_SANITIZE=ON -DWSPUSH_FUZZ=ON whose
# wspush_fuzz_targets were built. For longer runs, see docs/fuzzing.md.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
build=${2:-build-asan}
targets=(fuzz_client_command fuzz_http_api fuzz_config fuzz_token fuzz_inflate)

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

scratch=$(mktemp -d "${TMPDIR:-/tmp}/wspush-fuzz.XXXXXX")
failed=()
for target in "${targets[@]}"; do
  binary="$build/tests/fuzz/$target"
  if [ ! -x "$binary" ]; then
    echo "=== $target: $binary is missing (build the wspush_fuzz_targets target)" >&2
    exit 2
  fi
  work="$scratch/$target"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp tests/fuzz/corpus/"$target"/* "$work/corpus/"
  dict=()
  if [ -f "tests/fuzz/$target.dict" ]; then dict=(-dict="tests/fuzz/$target.dict"); fi
  echo "=== fuzz: $target for ${seconds}s"
  # -timeout: one input taking this long is a hang. -rss_limit_mb: well above what a target
  # needs (under 200 MB), below what would disturb the machine. -close_fd_mask: the daemon's
  # logging would otherwise flood the output.
  if ! "$binary" "${dict[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -close_fd_mask=1 -artifact_prefix="$work/artifacts/" "$work/corpus" >"$work/log" 2>&1; then
    failed+=("$target")
    echo "--- $target FAILED; its log ($work/log) ends:" >&2
    tail -n 60 "$work/log" >&2
    echo "--- the input that failed: $(ls "$work"/artifacts/* 2>/dev/null | tr '\n' ' ')" >&2
  else
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$work/log" | tr '\n' ' '
    echo
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "=== fuzzing found problems in: ${failed[*]} (scratch: $scratch)" >&2
  exit 1
fi
rm -rf "$scratch"
echo "=== fuzzing: no target found anything"
