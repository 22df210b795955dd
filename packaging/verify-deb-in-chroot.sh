#!/usr/bin/env bash
# Installs the .deb that `cpack -G DEB` made into a fresh Debian 12 root (debootstrap minbase, in
# a chroot), with apt resolving its dependencies from the archive, and checks what an admin gets:
# the wspush user, the config's owner and mode, the enabled unit, wspushd started from its
# installed path as that user answering /healthz, a SIGTERM drain that exits 0, and a purge.
# systemd does not run inside a chroot, so the unit itself is checked by the install_layout test
# (systemd-analyze verify), not started here.
#
# Usage (as root): packaging/verify-deb-in-chroot.sh PATH/TO/wspush_*.deb [WORK_DIR]
#   WORK_DIR (default /var/tmp/wspush-deb-check) keeps a pristine debootstrap'd root between runs
#   (bookworm-pristine) and the root each run installs into (bookworm-test, made again each run).
# Environment: MIRROR (default http://deb.debian.org/debian).
set -euo pipefail

deb=$(realpath "$1")
work=${2:-/var/tmp/wspush-deb-check}
mirror=${MIRROR:-http://deb.debian.org/debian}
pristine=$work/bookworm-pristine
root=$work/bookworm-test

[ "$(id -u)" -eq 0 ] || { echo "verify-deb-in-chroot.sh: run as root" >&2; exit 1; }
fail() { echo "verify-deb-in-chroot: FAILED: $*" >&2; exit 1; }
say() { printf '\n== %s\n' "$*"; }
in_root() { chroot "$root" "$@"; }

if [ ! -x "$pristine/usr/bin/apt-get" ]; then
  say "debootstrap bookworm into $pristine"
  rm -rf "$pristine"
  mkdir -p "$work"
  debootstrap --variant=minbase bookworm "$pristine" "$mirror"
fi
rm -rf "$root"
cp -a "$pristine" "$root"
cleanup() {
  if [ -n "${daemon_pid:-}" ]; then kill "$daemon_pid" 2>/dev/null || true; fi
  umount "$root/proc" 2>/dev/null || true
}
trap cleanup EXIT
mount -t proc proc "$root/proc"
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp "$deb" "$root/tmp/"

say "apt-get install ./$(basename "$deb") in a fresh bookworm root"
in_root apt-get update -qq
DEBIAN_FRONTEND=noninteractive in_root apt-get install -y --no-install-recommends "/tmp/$(basename "$deb")"

say "what the package installed"
in_root dpkg-query -W -f='${Package} ${Version} ${Status}\nDepends: ${Depends}\n' wspush
in_root dpkg-query -L wspush | grep -v '^/\.$'
in_root getent passwd wspush || fail "no wspush user"
# Inside the root: its /etc/group names the group, not the host's.
in_root ls -ld /etc/wspush /etc/wspush/wspush.json
[ "$(in_root stat -c '%U:%G %a' /etc/wspush/wspush.json)" = "root:wspush 640" ] || fail "config owner or mode"
[ "$(in_root stat -c '%U:%G %a' /etc/wspush)" = "root:wspush 750" ] || fail "/etc/wspush owner or mode"
in_root dpkg-statoverride --list
grep -qx /etc/wspush/wspush.json "$root/var/lib/dpkg/info/wspush.conffiles" || fail "config is not a conffile"
ls -l "$root/etc/systemd/system/multi-user.target.wants/wspushd.service" || fail "unit not enabled"

say "wspushd from /usr/bin as the wspush user, on the installed config"
in_root runuser -u wspush -- /usr/bin/wspushd --version
in_root runuser -u wspush -- /usr/bin/wspushd --check-config --config /etc/wspush/wspush.json
# Port 0 on both listeners: this root shares the host's network; the ready file says the ports.
in_root env WSPUSH_LISTEN=127.0.0.1:0 WSPUSH_API_LISTEN=127.0.0.1:0 \
  runuser -u wspush -- /usr/bin/wspushd --config /etc/wspush/wspush.json --ready-file /tmp/ready.json \
  >"$work/wspushd.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do [ -s "$root/tmp/ready.json" ] && break; sleep 0.1; done
[ -s "$root/tmp/ready.json" ] || { cat "$work/wspushd.log"; fail "wspushd did not start"; }
cat "$root/tmp/ready.json"; echo
port=$(sed 's/.*"port":\([0-9]*\).*/\1/' "$root/tmp/ready.json")
api_port=$(sed 's/.*"api_port":\([0-9]*\).*/\1/' "$root/tmp/ready.json")
pid=$(pgrep -f "^/usr/bin/wspushd --config /etc/wspush/wspush.json --ready-file /tmp/ready.json" | head -1)
uid=$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")
echo "wspushd (pid $pid) runs as uid $uid; wspush is uid $(in_root id -u wspush)"
[ "$uid" = "$(in_root id -u wspush)" ] || fail "wspushd does not run as wspush"
echo "GET /healthz (public port $port) -> $(curl -sS "http://127.0.0.1:$port/healthz")"
echo "GET /healthz (API port $api_port) -> $(curl -sS "http://127.0.0.1:$api_port/healthz")"
kill -TERM "$pid"
code=0
wait "$daemon_pid" || code=$?
daemon_pid=
echo "after SIGTERM: exit code $code"
tail -3 "$work/wspushd.log"
[ "$code" = 0 ] || fail "exit code $code after SIGTERM"

say "apt-get purge wspush"
DEBIAN_FRONTEND=noninteractive in_root apt-get purge -y -qq wspush
[ ! -e "$root/etc/wspush/wspush.json" ] || fail "config left after purge"
in_root dpkg-statoverride --list | grep wspush && fail "statoverrides left after purge"
echo "purged: no /etc/wspush/wspush.json, no statoverride; the wspush user stays (Debian practice)"
echo
echo "verify-deb-in-chroot: all checks passed"
