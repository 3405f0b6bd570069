#!/usr/bin/env bash
# Fuzzes a live haven-api with schemathesis (PyPI) against its own /openapi.json: every
# response must be no 5xx, a documented status, the documented content type and conform to
# its documented schema. Starts the api (debug build) on a free port against DATABASE_URL /
# REDIS_URL (migrated first) with rate limits high enough never to answer 429, and stops it
# at the end. Schemathesis lives in its own virtualenv, .tools/schemathesis-venv.
#
# Usage: scripts/fuzz-api.sh [seconds] [max-examples]   (defaults 120 and 25)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.tools/schemathesis-venv"
SCHEMATHESIS_VERSION=4.32.5
seconds="${1:-120}"
examples="${2:-25}"
say() { printf 'fuzz-api: %s\n' "$*" >&2; }

if [[ ! -x $VENV/bin/st ]]; then
    say "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python3" -m pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" >&2
fi

cd "$ROOT"
cargo build -q -p haven-api --bin haven-api
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
mkdir -p .tools/logs
log=".tools/logs/fuzz-api-$port.log"
HAVEN_API_ADDR="127.0.0.1:$port" \
    HAVEN_RATE_LIMIT_PUBLIC_PER_MIN=10000000 \
    HAVEN_RATE_LIMIT_AUTHENTICATED_PER_MIN=10000000 \
    HAVEN_RATE_LIMIT_SENSITIVE_PER_MIN=10000000 \
    target/debug/haven-api --migrate >"$log" 2>&1 &
api_pid=$!
trap 'kill "$api_pid" 2>/dev/null || true; wait "$api_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
    kill -0 "$api_pid" 2>/dev/null || { say "the api did not start; see $log"; exit 1; }
    sleep 0.2
done

say "schemathesis against http://127.0.0.1:$port/openapi.json for at most ${seconds}s, $examples examples per operation"
# From .tools/logs, so that schemathesis' example database and reports stay out of the tree.
cd .tools/logs
"$VENV/bin/st" run "http://127.0.0.1:$port/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --max-examples "$examples" \
    --max-time "$seconds" \
    --report junit --report-dir fuzz-api-report
