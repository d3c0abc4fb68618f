#!/usr/bin/env bash
# Runs schemathesis against a fresh cmd/server on a free loopback port
# (make test-schemathesis): every operation of the served
# /v1/openapi.yaml, every check, a fixed seed and a bounded number of
# examples. Fails on any failure, and on any ERROR the server logged.
#
#   run.sh SERVER_BINARY SCHEMATHESIS SEED EXAMPLES
set -euo pipefail
server=$1 schemathesis=$2 seed=$3 examples=$4
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
log=$work/server.log
"$server" -addr 127.0.0.1:0 -data "$work/data" -log-format json >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

url=
for _ in $(seq 300); do
	url=$(sed -n 's/.*"msg":"sheetlog server listening".*"url":"\([^"]*\)".*/\1/p' "$log" | head -1)
	[[ -n $url ]] && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
if [[ -z $url ]]; then
	echo "test-schemathesis: the server did not start:" >&2
	cat "$log" >&2
	exit 1
fi
echo "test-schemathesis: $url, seed $seed, $examples examples per operation"

cd "$here" # schemathesis.toml and hooks.py
timeout 600 "$schemathesis" run --checks all --seed "$seed" --max-examples "$examples" \
	--no-color "$url/v1/openapi.yaml"

if grep -q '"level":"ERROR"' "$log"; then
	echo "test-schemathesis: the server logged errors:" >&2
	grep '"level":"ERROR"' "$log" | head -20 >&2
	exit 1
fi
