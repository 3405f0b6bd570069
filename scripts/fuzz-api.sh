#!/usr/bin/env bash
# Fuzzes a live haven-api with schemathesis (PyPI) against its own /openapi.json: every
# response must be no 5xx, a documented status, the documented content type and conform to
# its documented schema. Starts the api (debug build) on a free port against DATABASE_URL /
# REDIS_URL (migrated first) with rate limits and the failed-authentication lockout high
# enough never to answer 429, and stops it at the end. The run is authenticated: a fresh
# admin is created with `haven-admin users create` and every request carries its access
# token, so the protected operations are exercised beyond their 401 (logout and the
# disable/role operations on a user are left out: the fuzzer finds the admin's own id through
# GET /api/v1/users and would revoke its token mid-run; the integration tests cover them). Schemathesis lives in its own virtualenv,
# .tools/schemathesis-venv.
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
cargo build -q -p haven-api --bin haven-api -p haven-admin --bin haven-admin
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
mkdir -p .tools/logs
log=".tools/logs/fuzz-api-$port.log"
HAVEN_API_ADDR="127.0.0.1:$port" \
    HAVEN_RATE_LIMIT_PUBLIC_PER_MIN=10000000 \
    HAVEN_RATE_LIMIT_AUTHENTICATED_PER_MIN=10000000 \
    HAVEN_RATE_LIMIT_SENSITIVE_PER_MIN=10000000 \
    HAVEN_AUTH_FREE_FAILURES=1000000000 \
    HAVEN_AUTH_BAN_AFTER=2000000000 \
    target/debug/haven-api --migrate >"$log" 2>&1 &
api_pid=$!
trap 'kill "$api_pid" 2>/dev/null || true; wait "$api_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
    kill -0 "$api_pid" 2>/dev/null || { say "the api did not start; see $log"; exit 1; }
    sleep 0.2
done

email="fuzz-$port-$(date +%s)@example.com"
password="$(target/debug/haven-admin users create --email "$email" --role admin 2>/dev/null |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["password"])')"
token="$(curl -fsS "http://127.0.0.1:$port/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"$password\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')"
[[ -n $token ]] || { say "could not log the fuzzing admin in; see $log"; exit 1; }
say "authenticated as $email (admin)"

say "schemathesis against http://127.0.0.1:$port/openapi.json for at most ${seconds}s, $examples examples per operation"
# From .tools/logs, so that schemathesis' example database and reports stay out of the tree.
cd .tools/logs
"$VENV/bin/st" run "http://127.0.0.1:$port/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --max-examples "$examples" \
    --max-time "$seconds" \
    --header "Authorization: Bearer $token" \
    --exclude-path-regex 'logout|/users/\{id\}/' \
    --report junit --report-dir fuzz-api-report
