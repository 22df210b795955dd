#!/usr/bin/env bash
# The JavaScript SDK's whole check: install, build (with the bundle size), typecheck, unit tests,
# end-to-end tests against the real daemon, and the browser tests of the chat demo and of the
# daemon's admin console.
#   WSPUSH_DAEMON  the wspushd binary (default: ../../build/wspushd, relative to sdk/js)
#   CHROMIUM       the browser for the browser test (default: /usr/bin/chromium, Debian's "chromium")
#   WSPUSH_TEST_NODE  the Node.js (20 or later) that runs the tests (default: node); npm, the
#                  build and the typecheck run on the system's
# Exits non-zero on the first failure. Every step is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."

export WSPUSH_DAEMON="${WSPUSH_DAEMON:-../../build/wspushd}"
[[ -x "$WSPUSH_DAEMON" ]] || { echo "sdk/js: no wspushd at $WSPUSH_DAEMON (set WSPUSH_DAEMON)" >&2; exit 1; }
[[ -x "${CHROMIUM:-/usr/bin/chromium}" ]] || { echo "sdk/js: no chromium (apt-get install chromium, or set CHROMIUM)" >&2; exit 1; }

step() { echo; echo "=== sdk/js: $1 ==="; }

step "npm ci"
timeout 300 npm ci --no-audit --no-fund --loglevel=error

step "build"
timeout 120 node scripts/build.mjs

step "typecheck"
timeout 120 node_modules/.bin/tsc -p tsconfig.json

step "tests"
timeout 600 "${WSPUSH_TEST_NODE:-node}" scripts/run-tests.mjs unit e2e browser
