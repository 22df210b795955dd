#!/usr/bin/env bash
# ctest "install_layout": `cmake --install` into a temporary DESTDIR puts the daemon, its config
# and the systemd unit where the package and the unit expect them, the installed daemon accepts
# the installed config (and the container image's), and systemd-analyze, where present, accepts
# the unit. A second or so.
# Usage: check-install.sh CMAKE BUILD_DIR PREFIX SYSCONFDIR SOURCE_DIR
set -euo pipefail
cmake=$1 build=$2 prefix=$3 sysconfdir=$4 source=$5

dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
fail() { echo "check-install: $*" >&2; exit 1; }

DESTDIR=$dest "$cmake" --install "$build" >/dev/null
bin=$dest$prefix/bin/wspushd
conf=$dest$sysconfdir/wspush/wspush.json
unit=$dest$prefix/lib/systemd/system/wspushd.service
for file in "$bin" "$conf" "$unit"; do [ -f "$file" ] || fail "not installed: ${file#"$dest"}"; done
[ -x "$bin" ] || fail "not executable: ${bin#"$dest"}"

"$bin" --version >/dev/null
# Without the caller's WSPUSH_* variables, which would override the files' values (the rest of
# the environment stays: the sanitizer build's ASAN_OPTIONS among it).
clean=(env)
for name in $(compgen -e | grep '^WSPUSH_' || true); do clean+=(-u "$name"); done
"${clean[@]}" "$bin" --check-config --config "$conf" >/dev/null || fail "installed config rejected"
"${clean[@]}" "$bin" --check-config --config "$source/docker/wspush.json" >/dev/null ||
  fail "docker/wspush.json rejected"

expected="ExecStart=$prefix/bin/wspushd --config $sysconfdir/wspush/wspush.json"
grep -qxF "$expected" "$unit" || fail "the unit lacks: $expected"

if command -v systemd-analyze >/dev/null; then
  # verify wants ExecStart's binary to exist: point it at the one in DESTDIR.
  mkdir -p "$dest/verify"
  sed "s|^ExecStart=$prefix/bin/wspushd|ExecStart=$bin|" "$unit" >"$dest/verify/wspushd.service"
  out=$(systemd-analyze verify "$dest/verify/wspushd.service" 2>&1) || fail "systemd-analyze verify: $out"
  # verify exits 0 on some warnings; an unknown or misspelled setting is one of them.
  if grep -q 'wspushd.service' <<<"$out"; then fail "systemd-analyze verify: $out"; fi
else
  echo "check-install: systemd-analyze not found; the unit was not verified"
fi
echo "check-install: ok"
