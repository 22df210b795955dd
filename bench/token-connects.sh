#!/usr/bin/env bash
# What verifying connection tokens costs (issue #12): connects per second, and server CPU per
# connect, without a token and with HS256, RS256 (2048-bit key) and ES256 tokens.
#
# Starts one wspushd (memory engine, loopback, free port) that accepts anonymous connections and
# verifies tokens with an HMAC secret, an RSA and an EC public key made here with openssl; then runs
# `wspush-bench churn` (connect + subscribe + close, --concurrency loops) for --duration seconds per
# kind, the kinds alternating, --rounds times. The tokens are signed once (one per kind) with the
# openssl command line: the server verifies every connect's token all the same.
#
#   bench/token-connects.sh [--build DIR] [--duration S] [--rounds N] [--concurrency N] [--threads N]
#
# Prints a table and one JSON line starting with {"token_connects":. Everything listens on 127.0.0.1.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source bench/lib.sh

build=build duration=5 rounds=2 concurrency=32 threads=1
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=${2:?}; shift ;;
    --duration) duration=${2:?}; shift ;;
    --rounds) rounds=${2:?}; shift ;;
    --concurrency) concurrency=${2:?}; shift ;;
    --threads) threads=${2:?}; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "token-connects.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[[ $duration =~ ^[0-9]+$ ]] && [ "$duration" -ge 1 ] && [ "$duration" -le 120 ] ||
  { echo "token-connects.sh: --duration 1-120" >&2; exit 2; }
[[ $rounds =~ ^[0-9]+$ ]] && [ "$rounds" -ge 1 ] && [ "$rounds" -le 10 ] || { echo "token-connects.sh: --rounds 1-10" >&2; exit 2; }
[[ $concurrency =~ ^[0-9]+$ ]] && [ "$concurrency" -ge 1 ] && [ "$concurrency" -le 512 ] ||
  { echo "token-connects.sh: --concurrency 1-512" >&2; exit 2; }
case $build in /*) ;; *) build="$root/$build" ;; esac
for bin in "$build/wspushd" "$build/bench/wspush-bench" "$(command -v openssl || true)" "$(command -v jq || true)"; do
  [ -n "$bin" ] && [ -x "$bin" ] || { echo "token-connects.sh: missing $bin" >&2; exit 1; }
done

work=$(mktemp -d /tmp/wspush-token-connects.XXXXXX)
server_pid=""
cleanup() {
  stop_pid "$server_pid"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
secret=$(openssl rand -hex 32)
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/rsa.key" 2>/dev/null
openssl pkey -in "$work/rsa.key" -pubout -out "$work/rsa.pem"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/ec.key" 2>/dev/null
openssl pkey -in "$work/ec.key" -pubout -out "$work/ec.pem"

# An hour-long token without `sub` (an anonymous connection, like the tokenless kind: the runs then
# differ by the token's verification alone), signed with the openssl command line.
sign() {
  local alg=$1 kid=$2 header claims input
  header=$(printf '{"alg":"%s","kid":"%s","typ":"JWT"}' "$alg" "$kid" | b64url)
  claims=$(printf '{"exp":%d}' $(( $(date +%s) + 3600 )) | b64url)
  input="$header.$claims"
  case $alg in
    HS256) printf '%s.%s' "$input" "$(printf '%s' "$input" | openssl dgst -sha256 -hmac "$secret" -binary | b64url)" ;;
    RS256) printf '%s.%s' "$input" "$(printf '%s' "$input" | openssl dgst -sha256 -sign "$work/rsa.key" -binary | b64url)" ;;
    ES256)
      # openssl writes ECDSA signatures as DER; JWS wants r || s, 32 bytes each.
      printf '%s' "$input" | openssl dgst -sha256 -sign "$work/ec.key" -binary >"$work/sig.der"
      local r s
      r=$(openssl asn1parse -inform DER -in "$work/sig.der" | awk -F: '/INTEGER/{print $NF}' | sed -n 1p)
      s=$(openssl asn1parse -inform DER -in "$work/sig.der" | awk -F: '/INTEGER/{print $NF}' | sed -n 2p)
      printf '%s.%s' "$input" "$(printf '%064s%064s' "$r" "$s" | tr ' ' 0 | perl -ne 'print pack("H*", $_)' | b64url)" ;;
  esac
}

cat >"$work/config.json" <<EOF
{
  "listen": "127.0.0.1:0",
  "threads": $threads,
  "log": {"level": "warn"},
  "client": {"allow_anonymous": true, "token": {
    "hmac_secrets": [{"kid": "hs", "secret": "$secret"}],
    "public_keys": [{"kid": "rs", "pem_file": "$work/rsa.pem"}, {"kid": "es", "pem_file": "$work/ec.pem"}]}}
}
EOF
ulimit -n "$(ulimit -Hn)"
"$build/wspushd" --config "$work/config.json" --ready-file "$work/ready.json" >"$work/server.log" 2>&1 &
server_pid=$!
wait_ready "$work/ready.json" || { echo "token-connects.sh: wspushd did not start" >&2; cat "$work/server.log" >&2; exit 1; }

declare -A token=([none]="" [HS256]=$(sign HS256 hs) [RS256]=$(sign RS256 rs) [ES256]=$(sign ES256 es))
kinds=(none HS256 RS256 ES256)
results="[]"
printf '%-6s %-6s %12s %16s %8s\n' round kind "connects/s" "server us/conn" failures
for round in $(seq "$rounds"); do
  for kind in "${kinds[@]}"; do
    args=(churn --port "$port" --concurrency "$concurrency" --duration "$duration" --server-pid "$server_pid"
          --max-time $((duration + 40)))
    [ -z "${token[$kind]}" ] || args+=(--token "${token[$kind]}")
    line=$("$build/bench/wspush-bench" "${args[@]}" 2>"$work/bench.err" | grep '^{"scenario"' || true)
    [ -n "$line" ] || { echo "token-connects.sh: wspush-bench failed ($kind)" >&2; cat "$work/bench.err" >&2; exit 1; }
    rate=$(jq -r '.cycles_per_second' <<<"$line")
    cycles=$(jq -r '.cycles' <<<"$line")
    cpu=$(jq -r '.server_cpu_seconds // 0' <<<"$line")
    failures=$(jq -r '.failures // 0' <<<"$line")
    per=$(jq -n --argjson cpu "$cpu" --argjson n "$cycles" 'if $n > 0 then ($cpu * 1e6 / $n * 10 | round / 10) else 0 end')
    printf '%-6s %-6s %12s %16s %8s\n' "$round" "$kind" "$rate" "$per" "$failures"
    results=$(jq -c --arg kind "$kind" --argjson round "$round" --argjson rate "$rate" --argjson per "$per" \
      --argjson failures "$failures" '. + [{round: $round, kind: $kind, connects_per_second: $rate,
      server_us_per_connect: $per, failures: $failures}]' <<<"$results")
  done
done
jq -c '{token_connects: .}' <<<"$results"
