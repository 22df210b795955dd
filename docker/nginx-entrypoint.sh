#!/bin/sh
# The nginx container's entrypoint: makes a self-signed certificate on first start (kept in the
# /var/lib/wspush-nginx volume), renders the nginx configuration with docker/nginx/render-conf.sh
# from the WSPUSH_NGINX_* variables, checks it and runs nginx in the foreground.
#
#   wspush-nginx          start (the container's command)
#   wspush-nginx reload   render again and reload the running nginx: after the nodes behind it
#                         changed (docker compose up --scale), since nginx resolves the upstream
#                         names only when it loads its configuration
set -eu

lib=/usr/local/lib/wspush-nginx
prefix=${WSPUSH_NGINX_PREFIX:?}
conf=$prefix/nginx.conf
cert=${WSPUSH_NGINX_CERT:?}
key=${WSPUSH_NGINX_KEY:?}
# The names the self-signed certificate is valid for (subjectAltName syntax).
names=${WSPUSH_NGINX_TLS_NAMES:-DNS:localhost,IP:127.0.0.1,IP:::1}

render() {
  mkdir -p "$prefix/logs"
  "$lib/render-conf.sh" "$conf.new"
  nginx -p "$prefix" -c "$conf.new" -t -q
  mv "$conf.new" "$conf"
}

case "${1:-start}" in
  reload)
    render
    exec nginx -p "$prefix" -c "$conf" -s reload
    ;;
  start) ;;
  *) echo "usage: wspush-nginx [start|reload]" >&2; exit 2 ;;
esac

if [ ! -s "$cert" ] || [ ! -s "$key" ]; then
  echo "wspush-nginx: no certificate at $cert: making a self-signed one for $names"
  mkdir -p "$(dirname "$cert")" "$(dirname "$key")"
  umask 077
  # P-256: every TLS client accepts it and it is quick to make. 825 days: the longest validity
  # some clients (Apple's) accept for a certificate they were told to trust.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
    -subj "/CN=wspush self-signed" -addext "subjectAltName=$names" \
    -keyout "$key.tmp" -out "$cert.tmp" 2>/dev/null
  mv "$key.tmp" "$key"
  umask 022
  chmod 644 "$cert.tmp"
  mv "$cert.tmp" "$cert"
fi
openssl x509 -in "$cert" -noout -subject -enddate -fingerprint -sha256 | sed 's/^/wspush-nginx: certificate /'

render
exec nginx -p "$prefix" -c "$conf" -g 'daemon off;'
