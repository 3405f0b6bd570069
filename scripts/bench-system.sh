#!/usr/bin/env bash
# System benchmark of what a user deploys: release binaries of haven-api and haven-worker as
# separate processes over loopback, driven by wrk, each figure printed as a ratio against a
# baseline measured in the same run on the same machine.
#
# Usage: scripts/bench-system.sh        (or ./x bench-system)
#   BENCH_SECONDS      seconds per measurement (default 10)
#   BENCH_CONNECTIONS  wrk connections (default 16)
#   BENCH_KEEP=1       keep the benchmark database afterwards
#   BENCH_MIX          requests of the mix after the warm-up before memory is read (1000000)
#   BENCH_PROFILE=rows record the api, Redis and Postgres with perf during these rows (comma-separated: health,
#                      whoami-jwt, whoami-key, replay, validate, ingest): target/bench-system/<row>.txt
#   BENCH_BENCHES=0    skip the money-path and nonce benches (their rows then say "skipped")
#   BENCH_REWARDS, BENCH_ROUNDS  rewards per round and rounds of the money path (400, 3)
#   BENCH_SCALING=0    skip the scaling table
#
# Rows (goal in brackets):
#   auth: GET /api/v1/auth/whoami with a JWT, then with an API key  vs GET /health, and vs
#           POST /api/v1/addresses/validate (public, passing the limiter as whoami does)  [0.8]
#   replay: a completed Idempotency-Key replayed (POST /api/v1/fraud/events by a service with
#           its API key, as fraud events are reported)  vs GET /health  [0.5]
#   limiter: POST /api/v1/addresses/validate (public, rate limited)  vs GET /health  [0.8]
#   ingest: signed, unique inbound webhooks accepted (POST /api/v1/webhooks/bench)  vs pgbench
#           single-row INSERTs into a table of the inbox's shape, same concurrency  [0.5]
#   money path: signed reward webhooks -> rewards confirmed on anvil per second (the release
#           worker as its own process)  vs raw pre-signed mint sends, 64 senders each  [0.5]
#           (cargo bench -p haven-worker --bench money_path, run first, on a quiet machine)
#   nonce: RedisNonceStore reserve + commit  vs one INCR from 64 tasks over the same
#           multiplexed client (cargo bench -p haven-nonce --bench reserve)  [0.5]
#   memory: the api's and the worker's resident memory after >= 1 M requests of the mix  vs after
#           the warm-up (every row once, 3 s each)  [<= 1.5x]
#   scaling (no goal): whoami with a JWT, addresses/validate and signed webhooks with 1, 2 and
#           4 api processes and with 1 and 2 workers, the connections spread over the apis
# Each process gets production settings (HAVEN_ENV=production, generated secrets) with the
# rate limits raised so that nothing is refused. Progress goes to stderr; the table to stdout.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_EACH=${BENCH_SECONDS:-10}
CONNECTIONS=${BENCH_CONNECTIONS:-16}
THREADS=2
MIX_TARGET=${BENCH_MIX:-1000000}
WORK="$(mktemp -d /tmp/haven-bench.XXXXXX)"
PROFILE_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/bench-system"
say() { printf 'bench-system: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

EXTRA_PIDS=()
cleanup() {
    local pid
    for pid in ${API_PID:-} ${WORKER_PID:-} "${EXTRA_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ -n ${BENCH_DB:-} && ${BENCH_KEEP:-0} != 1 ]]; then
        psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# --- services, tools, binaries --------------------------------------------------------------
eval "$("$ROOT/scripts/services.sh" --env)"
if ! command -v wrk >/dev/null 2>&1; then
    [[ $(id -u) -eq 0 ]] || die "wrk is missing: apt-get install wrk"
    say "installing wrk (Debian package)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null 2>&1 ||
        { DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null; }
fi
say "building the release binaries (cargo build --release)"
(cd "$ROOT" && cargo build --release -q -p haven-api -p haven-worker -p haven-admin)
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"

# --- the money path and the nonce store: their own benches, first, on the quiet machine ------
MONEY_RAW=0 MONEY_HAVEN=0 NONCE_INCR=0 NONCE_HAVEN=0
if [[ ${BENCH_BENCHES:-1} != 0 ]]; then
say "money path: cargo bench -p haven-worker --bench money_path (${BENCH_REWARDS:-400} rewards x ${BENCH_ROUNDS:-3} rounds)"
MONEY_OUT=$(cd "$ROOT" && HAVEN_BENCH_REWARDS=${BENCH_REWARDS:-400} HAVEN_BENCH_ROUNDS=${BENCH_ROUNDS:-3} \
    cargo bench -q -p haven-worker --bench money_path 2>"$WORK/money.err") ||
    { tail -n 30 "$WORK/money.err" >&2; die "the money-path bench failed"; }
printf '%s\n' "$MONEY_OUT" | sed 's/^/bench-system:   /' >&2
read -r MONEY_RAW MONEY_HAVEN < <(awk '$1 == "median" {print $2, $3}' <<<"$MONEY_OUT")
[[ -n ${MONEY_HAVEN:-} ]] || die "no median in the money-path output"
say "nonce: cargo bench -p haven-nonce --bench reserve (client_incr, haven_reserve_commit)"
NONCE_OUT=$(cd "$ROOT" && cargo bench -q -p haven-nonce --bench reserve -- 'client_incr|haven_reserve_commit' 2>&1) ||
    { printf '%s\n' "$NONCE_OUT" | tail -n 30 >&2; die "the nonce bench failed"; }
# criterion's middle throughput estimate, in operations per second
nonce_rate() {
    python3 -c '
import re, sys
name, text = sys.argv[1], sys.stdin.read()
block = text[text.index("nonce_64_clients/" + name):]
m = re.search(r"thrpt:\s*\[\S+ \S+ (\S+) (\S+)", block)
scale = {"elem/s": 1, "Kelem/s": 1e3, "Melem/s": 1e6, "Gelem/s": 1e9}[m.group(2)]
print(f"{float(m.group(1)) * scale:.0f}")' "$1" <<<"$NONCE_OUT"
}
NONCE_INCR=$(nonce_rate client_incr)
NONCE_HAVEN=$(nonce_rate haven_reserve_commit)
say "nonce: client_incr $NONCE_INCR ops/s, reserve+commit $NONCE_HAVEN ops/s"
fi

# --- a database of its own -------------------------------------------------------------------
ADMIN_URL="${DATABASE_URL%/*}/postgres"
BENCH_DB="haven_bench_$$"
secret() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
psql -q "$ADMIN_URL" -c "CREATE DATABASE $BENCH_DB" >/dev/null
# production refuses the development password: the same role with another one where the
# server trusts loopback, else a role of its own (made by the postgres superuser)
DB_PASSWORD="bench$(secret)"
SERVER="${DATABASE_URL#*@}"
SERVER="${SERVER%%/*}"
DB_USER="${DATABASE_URL#*://}"
DB_USER="${DB_USER%%:*}"
if ! psql -q "postgres://$DB_USER:$DB_PASSWORD@$SERVER/$BENCH_DB" -c 'select 1' >/dev/null 2>&1; then
    DB_USER=haven_bench
    runuser -u postgres -- psql -q -c "DROP ROLE IF EXISTS haven_bench" \
        -c "CREATE ROLE haven_bench LOGIN PASSWORD '$DB_PASSWORD'" \
        -c "ALTER DATABASE $BENCH_DB OWNER TO haven_bench" >/dev/null ||
        die "cannot give the benchmark database a non-development password (run as root)"
fi
export DATABASE_URL="postgres://$DB_USER:$DB_PASSWORD@$SERVER/$BENCH_DB"
"$BIN/haven-admin" migrate >/dev/null
export HAVEN_ENV=production HAVEN_LOG_FORMAT=json RUST_LOG=warn
export HAVEN_JWT_SECRET="$(secret)" HAVEN_API_KEY_PEPPER="$(secret)"
export HAVEN_REDIS_PREFIX="haven:bench:$$:"
export HAVEN_RATE_LIMIT_PUBLIC_PER_MIN=50000000 HAVEN_RATE_LIMIT_AUTHENTICATED_PER_MIN=50000000
export HAVEN_RATE_LIMIT_SENSITIVE_PER_MIN=1000000 HAVEN_RATE_LIMIT_WEBHOOK_PER_MIN=50000000
WEBHOOK_SECRET="whsec_$(head -c 32 /dev/urandom | base64 -w0)"
export HAVEN_WEBHOOK_SOURCES="{\"bench\":{\"scheme\":\"standard\",\"secrets\":[\"$WEBHOOK_SECRET\"]}}"
API_PORT=$((20000 + RANDOM % 20000))
WORKER_PORT=$((API_PORT + 1))
API="http://127.0.0.1:$API_PORT"

HAVEN_API_ADDR="127.0.0.1:$API_PORT" "$BIN/haven-api" >"$WORK/api.log" 2>&1 &
API_PID=$!
HAVEN_WORKER_ADDR="127.0.0.1:$WORKER_PORT" "$BIN/haven-worker" >"$WORK/worker.log" 2>&1 &
WORKER_PID=$!
for _ in $(seq 1 100); do
    curl -fsS "$API/health" >/dev/null 2>&1 && break
    kill -0 "$API_PID" 2>/dev/null || { grep -v "^ *[0-9]*: \|^ *at " "$WORK/api.log" | head -n 20 >&2; die "haven-api exited"; }
    sleep 0.2
done
curl -fsS "$API/health" >/dev/null || die "haven-api did not answer /health"
kill -0 "$WORKER_PID" 2>/dev/null || { tail -n 20 "$WORK/worker.log" >&2; die "haven-worker exited"; }

# --- a user, a token, a key ------------------------------------------------------------------
PASSWORD="$(secret)"
printf '%s\n' "$PASSWORD" | "$BIN/haven-admin" users create --email bench@example.com --role admin \
    --password-stdin >/dev/null
TOKEN=$(curl -fsS "$API/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"bench@example.com\",\"password\":\"$PASSWORD\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
KEY=$(curl -fsS "$API/api/v1/api-keys" -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    -d '{"name":"bench","scopes":["fraud:report"]}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')

# --- wrk -------------------------------------------------------------------------------------
TOTAL_REQUESTS=0
cat >"$WORK/request.lua" <<'LUA'
-- one request, its method, body and headers from the environment
wrk.method = os.getenv("M") or "GET"
local body = os.getenv("B")
if body and body ~= "" then wrk.body = body; wrk.headers["content-type"] = "application/json" end
for _, name in ipairs({"authorization", "x-api-key", "idempotency-key"}) do
  local v = os.getenv("H_" .. name:gsub("-", "_"))
  if v and v ~= "" then wrk.headers[name] = v end
end
LUA

# measure NAME PATH [env assignments...]: requests per second, appended to $WORK/rates
measure() {
    local name=$1 path=$2
    shift 2
    local out perf_pid=""
    if [[ ",${BENCH_PROFILE:-}," == *",$name,"* ]]; then
        mkdir -p "$PROFILE_DIR"
        # the api, Redis and every Postgres backend: the report names the process of each sample
        perf record -F 499 -g -p "$(pgrep -d, -x redis-server),$(pgrep -d, -u postgres postgres),$API_PID" \
            -o "$PROFILE_DIR/$name.data" -- sleep "$SECONDS_EACH" 2>/dev/null &
        perf_pid=$!
    fi
    local before after
    before=$(cpu_snapshot)
    out=$(env "$@" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${SECONDS_EACH}s" -s "${SCRIPT:-$WORK/request.lua}" "$API$path" 2>&1)
    local rate requests non2xx
    rate=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
    [[ -n $rate ]] || { printf '%s\n' "$out" >&2; die "wrk failed on $name"; }
    [[ -z $non2xx ]] || { printf '%s\n' "$out" >&2; die "$name: $non2xx answers were not 2xx"; }
    TOTAL_REQUESTS=$((TOTAL_REQUESTS + requests))
    after=$(cpu_snapshot)
    # CPU microseconds per request in the api, Redis and Postgres
    local per
    per=$(python3 -c "
b=[int(x) for x in '$before'.split()]; a=[int(x) for x in '$after'.split()]
hz=$(getconf CLK_TCK); n=max($requests,1)
print(' '.join(f'{(y-x)*1e6/hz/n:.1f}' for x,y in zip(b,a)))")
    printf '%s %s\n' "$name" "$per" >>"$WORK/cpu"
    if [[ -n $perf_pid ]]; then
        wait "$perf_pid" || true
        {
            echo "# samples per process"
            perf report -i "$PROFILE_DIR/$name.data" --no-children --sort comm --stdio -g none 2>/dev/null |
                grep -v '^#' | grep '%'
            echo "# hottest symbols (process, symbol)"
            perf report -i "$PROFILE_DIR/$name.data" --no-children --sort comm,dso,symbol --stdio -g none 2>/dev/null |
                grep -v '^#' | grep '%' | sed 's/  */ /g' | head -n 80
        } >"$PROFILE_DIR/$name.txt" || true
        say "profile of the api, Redis and Postgres during $name: $PROFILE_DIR/$name.txt"
    fi
    say "$(printf '%-28s %10s req/s   CPU µs/request: api %s, redis %s, postgres %s' "$name" "$rate" $per)"
    printf '%s %s\n' "$name" "$rate" >>"$WORK/rates"
}
# CPU time (clock ticks) of the api, Redis and Postgres processes so far
ticks() { # pid...
    local pid total=0 t
    for pid in "$@"; do
        t=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
        total=$((total + t))
    done
    echo "$total"
}
cpu_snapshot() {
    printf '%s %s %s' "$(ticks "$API_PID")" "$(ticks $(pgrep -x redis-server))" \
        "$(ticks $(pgrep -u postgres postgres))"
}
measure_script() { # NAME PATH LUA [env...]
    local name=$1 path=$2 script=$3
    shift 3
    SCRIPT=$script measure "$name" "$path" "$@"
}
rate_of() { awk -v n="$1" '$1 == n {print $2}' "$WORK/rates" | tail -n 1; }
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# Signed, unique inbound webhooks (Standard Webhooks v1), one per line, made just before the
# row (their timestamps must be fresh); each wrk thread takes every other line.
signed_webhooks() { # [FILE] [ID PREFIX]
    python3 - "$WEBHOOK_SECRET" "${1:-$WORK/webhooks.txt}" "${2:-bench}" <<'PY'
import base64, hashlib, hmac, sys, time
secret, out, prefix = sys.argv[1], sys.argv[2], sys.argv[3]
key = base64.b64decode(secret.removeprefix("whsec_"))
ts = str(int(time.time()))
with open(out, "w") as f:
    for i in range(400_000):
        mid, body = f"msg_{prefix}_{ts}_{i}", '{"type":"bench.event","data":{"n":%d}}' % i
        sig = base64.b64encode(hmac.new(key, f"{mid}.{ts}.{body}".encode(), hashlib.sha256).digest()).decode()
        f.write(f"{mid} {ts} {sig} {body}\n")
PY
}
cat >"$WORK/webhooks.lua" <<'LUA'
local threads = {}
function setup(thread) thread:set("tid", #threads); table.insert(threads, thread) end
function init(args)
  lines = {}
  for line in io.lines(os.getenv("WEBHOOK_FILE")) do lines[#lines + 1] = line end
  idx = tonumber(tid) + 1
end
function request()
  local line = lines[idx]
  idx = idx + 2
  if idx > #lines then idx = tonumber(tid) + 1 end
  local id, ts, sig, body = line:match("^(%S+) (%S+) (%S+) (.*)$")
  return wrk.format("POST", nil, {["webhook-id"] = id, ["webhook-timestamp"] = ts,
    ["webhook-signature"] = "v1," .. sig, ["content-type"] = "application/json"}, body)
end
LUA
# pgbench: single-row INSERTs into a table of the inbox's shape, same connections
psql -q "$DATABASE_URL" -c "CREATE TABLE bench_inbox (LIKE inbound_webhooks INCLUDING ALL)" >/dev/null
cat >"$WORK/insert.sql" <<'SQL'
INSERT INTO bench_inbox (source, message_id, body_sha256, body)
VALUES ('bench', gen_random_uuid()::text, sha256('{"type":"bench.event"}'::bytea), '{"type":"bench.event"}'::bytea);
SQL
pgbench_tps() {
    local out
    out=$(pgbench -n -c "$CONNECTIONS" -j "$THREADS" -T "$SECONDS_EACH" -f "$WORK/insert.sql" "$DATABASE_URL" 2>&1)
    awk '/^tps/ {print $3; exit}' <<<"$out" | grep . || { printf '%s\n' "$out" >&2; die "pgbench failed"; }
}

FRAUD_BODY='{"type":"transfer","event_id":"bench-replay-1","user":"bench","amount":"12.50","currency":"HNV","destination":"0x0000000000000000000000000000000000000001","ts":"'"$(date -u +%Y-%m-%dT%H:%M:%SZ)"'"}'
# reported by a service with its API key (scope fraud:report), as fraud events are
curl -fsS "$API/api/v1/fraud/events" -H "x-api-key: $KEY" -H 'content-type: application/json' \
    -H 'idempotency-key: bench-replay-1' -d "$FRAUD_BODY" >/dev/null
VALIDATE_BODY='{"address":"0x52908400098527886E0F7030069857D2E4169EE7","chain":"evm"}'


run_rows() {
    measure health /health
    measure whoami-jwt /api/v1/auth/whoami H_authorization="Bearer $TOKEN"
    measure whoami-key /api/v1/auth/whoami H_x_api_key="$KEY"
    measure replay /api/v1/fraud/events M=POST B="$FRAUD_BODY" H_x_api_key="$KEY" \
        H_idempotency_key=bench-replay-1
    measure validate /api/v1/addresses/validate M=POST B="$VALIDATE_BODY"
    signed_webhooks
    measure_script ingest /api/v1/webhooks/bench "$WORK/webhooks.lua" WEBHOOK_FILE="$WORK/webhooks.txt"
    local tps
    tps=$(pgbench_tps)
    say "$(printf '%-28s %10s tx/s' pgbench-insert "$tps")"
    printf 'pgbench-insert %s\n' "$tps" >>"$WORK/rates"
}
say "warm-up: every row once"
SECONDS_SAVED=$SECONDS_EACH
SECONDS_EACH=3
run_rows
SECONDS_EACH=$SECONDS_SAVED
API_RSS_WARM=$(rss "$API_PID")
WORKER_RSS_WARM=$(rss "$WORKER_PID")
: >"$WORK/rates"
: >"$WORK/cpu"
TOTAL_REQUESTS=0
say "measuring"
run_rows
while ((TOTAL_REQUESTS < MIX_TARGET)); do
    say "the mix again: $TOTAL_REQUESTS of $MIX_TARGET requests since the warm-up; api RSS $(rss "$API_PID") KiB"
    run_rows
done
API_RSS=$(rss "$API_PID")
WORKER_RSS=$(rss "$WORKER_PID")

# --- the table -------------------------------------------------------------------------------
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
row() { # name measured baseline goal kind(min|max)
    local r ok
    if [[ $3 == 0 ]]; then printf '| %-44s | %12s | %12s | %6s | %5s | %-3s |\n' "$1" skipped - - "$4" -; return; fi
    r=$(ratio "$2" "$3")
    if [[ $5 == min ]]; then ok=$(python3 -c "print('yes' if $r >= $4 else 'NO')"); else ok=$(python3 -c "print('yes' if $r <= $4 else 'NO')"); fi
    printf '| %-44s | %12s | %12s | %6s | %5s | %-3s |\n' "$1" "$2" "$3" "$r" "$4" "$ok"
}
H=$(rate_of health)
load=$(cut -d' ' -f1-3 /proc/loadavg)
echo
echo "haven bench-system — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $load, wrk -t$THREADS -c$CONNECTIONS -d${SECONDS_EACH}s; rates of the last round; $TOTAL_REQUESTS requests since the warm-up"
echo
printf '| %-44s | %12s | %12s | %6s | %5s | %-3s |\n' "figure (req/s; memory KiB)" measured baseline ratio goal met
echo "|---|---:|---:|---:|---:|---|"
row "whoami, JWT vs GET /health" "$(rate_of whoami-jwt)" "$H" 0.8 min
row "whoami, API key vs GET /health" "$(rate_of whoami-key)" "$H" 0.8 min
# the same requests against a public route that passes the rate limiter too (what is left is
# the credential's cost; a protected handler cannot be made public: it demands its principal)
row "whoami, JWT vs public addresses/validate" "$(rate_of whoami-jwt)" "$(rate_of validate)" 0.8 min
row "whoami, API key vs public addresses/validate" "$(rate_of whoami-key)" "$(rate_of validate)" 0.8 min
row "idempotent replay vs GET /health" "$(rate_of replay)" "$H" 0.5 min
row "addresses/validate (limited) vs GET /health" "$(rate_of validate)" "$H" 0.8 min
row "signed webhooks accepted vs pgbench INSERT" "$(rate_of ingest)" "$(rate_of pgbench-insert)" 0.5 min
row "money path: rewards confirmed/s vs raw mints/s" "$MONEY_HAVEN" "$MONEY_RAW" 0.5 min
row "nonce reserve+commit vs client INCR (ops/s)" "$NONCE_HAVEN" "$NONCE_INCR" 0.5 min
row "api RSS after $TOTAL_REQUESTS more req vs warm-up" "$API_RSS" "$API_RSS_WARM" 1.5 max
row "worker RSS after the mix vs warm-up" "$WORKER_RSS" "$WORKER_RSS_WARM" 1.5 max
echo
echo "CPU microseconds per request (where a request's cost goes; 2 cores shared by wrk, the api, Redis, Postgres):"
echo
echo "| row | api | redis | postgres |"
echo "|---|---:|---:|---:|"
for name in health whoami-jwt whoami-key replay validate ingest; do
    awk -v n="$name" '$1 == n {r=$0} END {split(r, f, " "); printf "| %s | %s | %s | %s |\n", f[1], f[2], f[3], f[4]}' "$WORK/cpu"
done

# --- scaling: 1, 2 and 4 api processes, 1 and 2 workers (no goal) ----------------------------
[[ ${BENCH_SCALING:-1} != 0 ]] || exit 0
API_PORTS=("$API_PORT")
start_api() { # PORT
    HAVEN_API_ADDR="127.0.0.1:$1" "$BIN/haven-api" >>"$WORK/api-$1.log" 2>&1 &
    EXTRA_PIDS+=($!)
    for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$1/health" >/dev/null 2>&1 && return; sleep 0.2; done
    die "the api on port $1 did not start"
}
# scaled NAME PATH [env...]: wrk against every api at once, the connections spread over them;
# prints the summed rate and the CPU % of Redis and Postgres during the run
scaled() {
    local name=$1 path=$2
    shift 2
    local n=${#API_PORTS[@]} port i=0 conns hz before_r before_p
    conns=$((CONNECTIONS / n)); ((conns >= 2)) || conns=2
    hz=$(getconf CLK_TCK)
    before_r=$(ticks $(pgrep -x redis-server)); before_p=$(ticks $(pgrep -u postgres postgres))
    local wrks=()
    for port in "${API_PORTS[@]}"; do
        if [[ $name == ingest ]]; then
            signed_webhooks "$WORK/webhooks-$port.txt" "scale${n}w${WORKERS}p$port"
            env "$@" WEBHOOK_FILE="$WORK/webhooks-$port.txt" wrk -t1 -c"$conns" -d"${SECONDS_EACH}s" \
                -s "$WORK/webhooks.lua" "http://127.0.0.1:$port$path" >"$WORK/scale-$i.out" 2>&1 &
            wrks+=($!)
        else
            env "$@" wrk -t1 -c"$conns" -d"${SECONDS_EACH}s" -s "$WORK/request.lua" \
                "http://127.0.0.1:$port$path" >"$WORK/scale-$i.out" 2>&1 &
            wrks+=($!)
        fi
        i=$((i + 1))
    done
    wait "${wrks[@]}" || true
    local total
    total=$(awk '/Requests\/sec/ {s += $2} END {printf "%.0f", s}' "$WORK"/scale-*.out)
    if grep -q 'Non-2xx' "$WORK"/scale-*.out; then die "scaling $name: answers that were not 2xx"; fi
    rm -f "$WORK"/scale-*.out
    local r p
    r=$(( ($(ticks $(pgrep -x redis-server)) - before_r) * 100 / hz / SECONDS_EACH ))
    p=$(( ($(ticks $(pgrep -u postgres postgres)) - before_p) * 100 / hz / SECONDS_EACH ))
    printf '%s %s%% %s%%' "$total" "$r" "$p"
}
WORKERS=1
scale_rows() {
    local jwt key validate ingest
    jwt=$(scaled whoami-jwt /api/v1/auth/whoami H_authorization="Bearer $TOKEN")
    validate=$(scaled validate /api/v1/addresses/validate M=POST B="$VALIDATE_BODY")
    ingest=$(scaled ingest /api/v1/webhooks/bench)
    say "scaling: ${#API_PORTS[@]} api, $WORKERS worker: whoami-jwt $jwt, validate $validate, ingest $ingest"
    cell() { awk '{printf "%s (redis %s, postgres %s)", $1, $2, $3}' <<<"$1"; }
    printf '| %s | %s | %s | %s | %s |\n' "${#API_PORTS[@]}" "$WORKERS" \
        "$(cell "$jwt")" "$(cell "$validate")" "$(cell "$ingest")" >>"$WORK/scaling"
}
say "scaling: the same rows with 1, 2 and 4 api processes, then 2 workers"
: >"$WORK/scaling"
scale_rows
for n in 2 4; do
    while ((${#API_PORTS[@]} < n)); do
        port=$((API_PORT + 10 + ${#API_PORTS[@]}))
        start_api "$port"
        API_PORTS+=("$port")
    done
    scale_rows
done
HAVEN_WORKER_ADDR="127.0.0.1:$((WORKER_PORT + 20))" "$BIN/haven-worker" >"$WORK/worker-2.log" 2>&1 &
EXTRA_PIDS+=($!)
WORKERS=2
sleep 2
API_PORTS=("${API_PORTS[@]:0:2}")
scale_rows
echo
echo "Scaling (req/s summed over the apis; CPU % of Redis and Postgres during the row; wrk -t1 per api, $CONNECTIONS connections spread over them):"
echo
echo "| apis | workers | whoami JWT | addresses/validate | signed webhooks |"
echo "|---:|---:|---|---|---|"
cat "$WORK/scaling"
for pid in "${EXTRA_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
