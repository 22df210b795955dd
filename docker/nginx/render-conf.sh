#!/bin/sh
# Writes the nginx.conf for wspush to OUT_FILE: docker/nginx/wspush.conf (next to this script)
# with its @WSPUSH_NGINX_…@ names replaced from the environment, and nothing else changed. The
# container and the test suite (tests/support/nginx_process.cpp) both run what this writes.
#
# Usage: docker/nginx/render-conf.sh OUT_FILE
#   WSPUSH_NGINX_PUBLIC_LISTEN   the public TLS listener: "443", "0.0.0.0:443", "[::]:443",
#                                "127.0.0.1:18443" (default 443)
#   WSPUSH_NGINX_API_LISTEN      the backends' API listener, e.g. "10.0.0.5:8081" (default 8081)
#   WSPUSH_NGINX_WS_UPSTREAMS    the nodes' public listeners, host:port separated by spaces
#   WSPUSH_NGINX_API_UPSTREAMS   the nodes' API listeners (api.listen), host:port separated by spaces
#   WSPUSH_NGINX_CERT            PEM certificate chain, leaf first (absolute path)
#   WSPUSH_NGINX_KEY             PEM private key (absolute path)
#   WSPUSH_NGINX_PREFIX          a folder nginx's user can write: pid file and temp paths
#                                (absolute path; default /var/lib/nginx, as Debian's nginx)
# A missing or malformed value is an error naming the variable (exit 2): no config is written.
# Values are checked to a conservative alphabet, so none can add a directive to the config.
set -eu

fail() {
  echo "render-conf.sh: $*" >&2
  exit 2
}

[ $# -eq 1 ] && [ -n "$1" ] || fail "usage: $0 OUT_FILE"
out=$1
template="$(cd "$(dirname "$0")" && pwd)/wspush.conf"
[ -r "$template" ] || fail "cannot read the template $template"

: "${WSPUSH_NGINX_PUBLIC_LISTEN:=443}"
: "${WSPUSH_NGINX_API_LISTEN:=8081}"
: "${WSPUSH_NGINX_PREFIX:=/var/lib/nginx}"
: "${WSPUSH_NGINX_WS_UPSTREAMS:=}"
: "${WSPUSH_NGINX_API_UPSTREAMS:=}"
: "${WSPUSH_NGINX_CERT:=}"
: "${WSPUSH_NGINX_KEY:=}"
# awk reads them from its environment, defaults included.
export WSPUSH_NGINX_PUBLIC_LISTEN WSPUSH_NGINX_API_LISTEN WSPUSH_NGINX_PREFIX WSPUSH_NGINX_WS_UPSTREAMS \
  WSPUSH_NGINX_API_UPSTREAMS WSPUSH_NGINX_CERT WSPUSH_NGINX_KEY

# True when $2 holds only characters of the set $1 (tr's syntax) and is not empty; a newline,
# a space, ';', '{', '$' or a quote is never in a set below. The '#' after it keeps a trailing
# newline from vanishing in the command substitution.
only() {
  [ -n "$2" ] && [ "$(printf '%s#' "$2" | tr -d "$1")" = "#" ]
}

address_chars='A-Za-z0-9._:[]-'
path_chars='A-Za-z0-9._/+@-'

# "443", "host:port" or "[v6]:port": the port is the digits after the last colon.
check_listen() {  # name value [what is expected, for the error]
  only "$address_chars" "$2" ||
    fail "$1: expected ${3:-a port or address:port (e.g. 443, 127.0.0.1:18443, [::]:443)}, got \"$2\""
  case $2 in
    *:) fail "$1: no port after the colon in \"$2\"" ;;
  esac
  port=${2##*:}
  only '0-9' "$port" || fail "$1: the port of \"$2\" is not a number"
  [ "$port" -ge 1 ] && [ "$port" -le 65535 ] || fail "$1: port $port is not 1-65535"
}

check_path() {  # name value
  only "$path_chars" "$2" || fail "$1: expected an absolute path of letters, digits and ._/+@-, got \"$2\""
  case $2 in
    /*) ;;
    *) fail "$1: expected an absolute path, got \"$2\"" ;;
  esac
}

# Prints the upstream block's "server host:port;" lines for the space-separated list $2.
servers() {  # name value
  lines=""
  count=0
  for entry in $2; do
    case $entry in
      *:*) ;;
      *) fail "$1: expected host:port, got \"$entry\"" ;;
    esac
    check_listen "$1" "$entry" "host:port"
    lines="$lines        server $entry;
"
    count=$((count + 1))
  done
  [ "$count" -gt 0 ] || fail "$1: name at least one node (host:port, separated by spaces)"
  printf '%s' "$lines"
}

check_listen WSPUSH_NGINX_PUBLIC_LISTEN "$WSPUSH_NGINX_PUBLIC_LISTEN"
check_listen WSPUSH_NGINX_API_LISTEN "$WSPUSH_NGINX_API_LISTEN"
[ "$WSPUSH_NGINX_PUBLIC_LISTEN" != "$WSPUSH_NGINX_API_LISTEN" ] ||
  fail "WSPUSH_NGINX_API_LISTEN: must differ from WSPUSH_NGINX_PUBLIC_LISTEN (the API is not for the public side)"
[ -n "$WSPUSH_NGINX_CERT" ] || fail "WSPUSH_NGINX_CERT: not set (the certificate's PEM file)"
[ -n "$WSPUSH_NGINX_KEY" ] || fail "WSPUSH_NGINX_KEY: not set (the private key's PEM file)"
check_path WSPUSH_NGINX_CERT "$WSPUSH_NGINX_CERT"
check_path WSPUSH_NGINX_KEY "$WSPUSH_NGINX_KEY"
check_path WSPUSH_NGINX_PREFIX "$WSPUSH_NGINX_PREFIX"
# Subshells would swallow fail()'s exit: collect first, then test.
ws_servers=$(servers WSPUSH_NGINX_WS_UPSTREAMS "$WSPUSH_NGINX_WS_UPSTREAMS") || exit 2
api_servers=$(servers WSPUSH_NGINX_API_UPSTREAMS "$WSPUSH_NGINX_API_UPSTREAMS") || exit 2

# The prefix without a trailing slash, so that "@WSPUSH_NGINX_PREFIX@/body" has one.
prefix=$WSPUSH_NGINX_PREFIX
while [ "${prefix%/}" != "$prefix" ] && [ "$prefix" != / ]; do prefix=${prefix%/}; done
[ "$prefix" = / ] && prefix=""

# Literal replacement (index/substr, not gsub: no character of a value is special), the values
# from the environment (awk -v would interpret backslashes).
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
WS_SERVERS=$ws_servers API_SERVERS=$api_servers PREFIX=$prefix awk '
  function replace(text, name, value,    at, result) {
    result = ""
    while ((at = index(text, name)) > 0) {
      result = result substr(text, 1, at - 1) value
      text = substr(text, at + length(name))
    }
    return result text
  }
  {
    line = $0
    line = replace(line, "@WSPUSH_NGINX_PUBLIC_LISTEN@", ENVIRON["WSPUSH_NGINX_PUBLIC_LISTEN"])
    line = replace(line, "@WSPUSH_NGINX_API_LISTEN@", ENVIRON["WSPUSH_NGINX_API_LISTEN"])
    line = replace(line, "@WSPUSH_NGINX_CERT@", ENVIRON["WSPUSH_NGINX_CERT"])
    line = replace(line, "@WSPUSH_NGINX_KEY@", ENVIRON["WSPUSH_NGINX_KEY"])
    line = replace(line, "@WSPUSH_NGINX_PREFIX@", ENVIRON["PREFIX"])
    if (line == "@WSPUSH_NGINX_WS_UPSTREAM_SERVERS@") line = ENVIRON["WS_SERVERS"]
    if (line == "@WSPUSH_NGINX_API_UPSTREAM_SERVERS@") line = ENVIRON["API_SERVERS"]
    print line
  }
' "$template" > "$tmp"
# Only the comments at the top name the placeholders ("@WSPUSH_NGINX_…@"); a directive left
# with one is a template that this script does not know.
if grep -v '^[[:space:]]*#' "$tmp" | grep -q '@WSPUSH_NGINX_'; then
  fail "the template has a placeholder this script does not fill: $(grep -v '^[[:space:]]*#' "$tmp" | grep -o '@WSPUSH_NGINX_[A-Z_]*@' | head -n 1)"
fi
mv "$tmp" "$out"
trap - EXIT
