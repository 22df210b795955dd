#!/usr/bin/env bash
# Installs the comparison peers for bench/compare.sh, from Debian 12 and npm only. Idempotent:
# apt-get runs (after one `apt-get update`) only when a package is missing, and `npm ci` only when
# bench/peers/ws/node_modules does not match package-lock.json.
#   nchan: nginx + libnginx-mod-nchan (Debian), config in bench/peers/nchan/
#   ws:    Node `ws` 8 (npm, pinned by package-lock.json), server in bench/peers/ws/
#   jq:    compare.sh reads the bench's JSON lines with it
# Debian's nginx package would start a system nginx on port 80 after installing; here no service
# is started (policy-rc.d, as in containers, or the service never enabled), and the peers run
# their own nginx from a temp directory on loopback only.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

packages=(nginx libnginx-mod-nchan jq nodejs npm procps util-linux)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
# Node may come from elsewhere than Debian (e.g. NodeSource): then it is not missing.
if command -v node >/dev/null && command -v npm >/dev/null; then
  kept=()
  for package in "${missing[@]}"; do
    [ "$package" = nodejs ] || [ "$package" = npm ] || kept+=("$package")
  done
  missing=("${kept[@]+"${kept[@]}"}")
fi
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "${missing[@]}"
fi
# Debian's package enables a default site and may have started nginx with it if services are
# allowed to start; the peers never use it. Say so rather than touching the system service.
if pgrep -x nginx >/dev/null 2>&1 && [ -f /run/nginx.pid ]; then
  echo "note: a system nginx is running (/run/nginx.pid); the nchan peer runs its own instance anyway"
fi

[ -f /usr/lib/nginx/modules/ngx_nchan_module.so ] || { echo "ngx_nchan_module.so is missing" >&2; exit 1; }

# ws: npm ci when node_modules is absent or older than the lock file.
ws_dir="$here/ws"
stamp="$ws_dir/node_modules/.package-lock.json"
if [ ! -f "$stamp" ] || [ "$ws_dir/package-lock.json" -nt "$stamp" ]; then
  (cd "$ws_dir" && npm ci --no-audit --no-fund --loglevel=error)
fi
node -e 'require(process.argv[1] + "/node_modules/ws"); console.log("ws peer: ws " + require(process.argv[1] + "/node_modules/ws/package.json").version)' "$ws_dir"
echo "nchan peer: $(nginx -v 2>&1) + $(dpkg-query -W -f='libnginx-mod-nchan ${Version}' libnginx-mod-nchan)"
