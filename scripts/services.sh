#!/usr/bin/env bash
# Brings up the local services haven needs (PostgreSQL, Redis, anvil) and prints their URLs;
# installs the browser the console's tests drive (chromium, playwright-core, axe-core).
#
# Usage: scripts/services.sh [--env] [--dry-run] [--stop-anvil] [--help]
#
#   (no flag)     install what is missing, start what is stopped, create the role and
#                 database, then print the URLs
#   --env         the same, but stdout carries only `export VAR=...` lines (for `eval`);
#                 progress goes to stderr and is limited to what the script changes
#   --dry-run     probe everything, print what would be installed, started or created,
#                 change nothing
#   --stop-anvil  stop the anvil this script started (PostgreSQL and Redis are system
#                 services shared with other work; see docs/OPERATIONS.md to stop them)
#
# Each service is probed first; a service that answers is used as it is and never
# restarted, so a second run changes nothing and returns in well under a second.
# DATABASE_URL, REDIS_URL and ETH_RPC_URL are honoured when set. When one does not answer
# and points at this machine, the service is installed/started on that port; when it
# points elsewhere, the script stops with an error naming the variable.
set -euo pipefail

readonly DEFAULT_DATABASE_URL="postgres://haven:haven@127.0.0.1:5432/haven"
readonly DEFAULT_REDIS_URL="redis://127.0.0.1:6379"
readonly DEFAULT_ETH_RPC_URL="http://127.0.0.1:8545"
readonly ANVIL_VERSION="1.7.1"
readonly ANVIL_CHAIN_ID=31337
readonly PLAYWRIGHT_VERSION="1.65.2"
readonly AXE_VERSION="4.14.1"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
readonly TOOLS="$ROOT/.tools"
readonly LOGS="$TOOLS/logs"

MODE=print
DRY_RUN=0
APT_UPDATED=0
ACTIONS=0

usage() { sed -n '2,20s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

for arg in "$@"; do
    case "$arg" in
        --env) MODE="env" ;;
        --dry-run) DRY_RUN=1 ;;
        --stop-anvil) MODE="stop-anvil" ;;
        -h | --help) usage; exit 0 ;;
        *) echo "services: unknown argument '$arg'" >&2; usage >&2; exit 2 ;;
    esac
done

# Progress always goes to stderr so that `--env` output stays clean for `eval`.
say() { printf 'services: %s\n' "$*" >&2; }
# Status lines about things left alone; silent with --env so recipes stay quiet.
note() { if [[ $MODE != env ]]; then say "$@"; fi; }
die() { printf 'services: error: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }
is_root() { [[ $(id -u) -eq 0 ]]; }

# Runs a command that changes the machine, or only reports it with --dry-run.
# Output goes to a log under .tools/logs; on failure its tail is shown.
change() {
    local name=$1
    shift
    ACTIONS=$((ACTIONS + 1))
    if ((DRY_RUN)); then
        local shown="$*"
        say "would run: ${shown#as_root }"
        return 0
    fi
    mkdir -p "$LOGS"
    local log="$LOGS/$name.log"
    printf '\n$ %s    # %s\n' "$*" "$(date -u +%FT%TZ)" >>"$log"
    if ! "$@" </dev/null >>"$log" 2>&1; then
        tail -n 30 "$log" >&2
        die "'$*' failed (full log: $log)"
    fi
}

# --- URL handling -----------------------------------------------------------------------

urldecode() { local s=${1//+/ }; printf '%b' "${s//%/\\x}"; }

# Splits a URL into URL_SCHEME URL_USER URL_PASS URL_HOST URL_PORT URL_PATH.
parse_url() {
    local re='^([A-Za-z][A-Za-z0-9+.-]*)://(([^:@/]*)(:([^@/]*))?@)?(\[[0-9A-Fa-f:.]+\]|[^:/?#]*)(:([0-9]+))?(/([^?#]*))?'
    [[ $1 =~ $re ]] || return 1
    URL_SCHEME=${BASH_REMATCH[1]}
    URL_USER=$(urldecode "${BASH_REMATCH[3]}")
    URL_PASS=$(urldecode "${BASH_REMATCH[5]}")
    URL_HOST=${BASH_REMATCH[6]}
    URL_HOST=${URL_HOST#[}
    URL_HOST=${URL_HOST%]}
    URL_PORT=${BASH_REMATCH[8]}
    URL_PATH=$(urldecode "${BASH_REMATCH[10]}")
}

is_local_host() {
    case "$1" in
        "" | localhost | 127.* | ::1 | "$(hostname 2>/dev/null || true)") return 0 ;;
        *) return 1 ;;
    esac
}

# Host to hand to clients and servers: an empty host (unix socket) means loopback here.
tcp_host() { if [[ -z $1 || $1 == localhost ]]; then echo 127.0.0.1; else echo "$1"; fi; }

# --- package installation ---------------------------------------------------------------

as_root() {
    if is_root; then
        "$@"
    elif have sudo && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        die "'$*' needs root: run 'sudo $ROOT/scripts/services.sh' once"
    fi
}

apt_fetch_lists() {
    APT_UPDATED=1
    change apt as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
}

# Installs Debian packages, refreshing the package lists once per run when they are
# missing or when an install fails on stale lists.
apt_install() {
    have apt-get || die "cannot install $* automatically on a system without apt-get; install it and run again"
    say "installing Debian packages: $*"
    if ((!APT_UPDATED)) && ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
        apt_fetch_lists
    fi
    local install=(as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@")
    if ((DRY_RUN)) || ((APT_UPDATED)); then
        change apt "${install[@]}"
    elif ! "${install[@]}" </dev/null >>"$(mkdir -p "$LOGS" && echo "$LOGS/apt.log")" 2>&1; then
        apt_fetch_lists
        change apt "${install[@]}"
    else
        ACTIONS=$((ACTIONS + 1))
    fi
}

# Waits until "$@" succeeds, for at most $1 seconds.
wait_for() {
    local seconds=$1
    shift
    local deadline=$((SECONDS + seconds))
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

# --- PostgreSQL -------------------------------------------------------------------------

pg_login_ok() {
    have psql || return 1
    local out
    out=$(PGCONNECT_TIMEOUT=3 psql "$DATABASE_URL" -XAtq \
        -c "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user" 2>/dev/null) || return 1
    PG_CAN_CREATEDB=$out
    return 0
}

pg_server_ready() { pg_isready -q -h "$(tcp_host "$PG_HOST")" -p "$PG_PORT" -t 2 >/dev/null 2>&1; }

newest_pg_version() { find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -V | tail -n 1; }

pg_start_server() {
    local ver name port status found=""
    while read -r ver name port status _; do
        if [[ $port == "$PG_PORT" ]]; then
            found="$ver $name $status"
            break
        fi
    done < <(pg_lsclusters --no-header 2>/dev/null || true)

    if [[ -z $found ]]; then
        if [[ -n $(pg_lsclusters --no-header 2>/dev/null || true) ]]; then
            die "DATABASE_URL uses port $PG_PORT but no PostgreSQL cluster is configured on it
$(pg_lsclusters 2>/dev/null)
point DATABASE_URL at one of these ports, or create a cluster: pg_createcluster --port $PG_PORT $(newest_pg_version) haven"
        fi
        ver=$(newest_pg_version)
        [[ -n $ver || $DRY_RUN -eq 1 ]] || die "PostgreSQL is installed but no server version was found under /usr/lib/postgresql"
        say "creating PostgreSQL cluster ${ver:-<version>}/main on port $PG_PORT"
        change postgresql as_root pg_createcluster --port "$PG_PORT" "${ver:-15}" main
        name=main
        status=down
    else
        read -r ver name status <<<"$found"
    fi

    if [[ $status == down ]]; then
        say "starting PostgreSQL cluster $ver/$name on port $PG_PORT"
        change postgresql as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start
    else
        note "PostgreSQL cluster $ver/$name is $status; waiting for it to accept connections"
    fi
    ((DRY_RUN)) && return 0
    wait_for 30 pg_server_ready ||
        die "PostgreSQL on port $PG_PORT did not accept connections within 30 s; see /var/log/postgresql/postgresql-$ver-$name.log"
}

# psql as the cluster's superuser: through the local socket as the postgres OS user
# (a fresh Debian pg_hba.conf allows only peer auth for it), else over TCP as postgres.
pg_admin_psql() {
    if is_root && id postgres >/dev/null 2>&1; then
        (cd / && runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres "$@")
    elif have sudo && sudo -n true 2>/dev/null && id postgres >/dev/null 2>&1; then
        (cd / && sudo -n -u postgres psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres "$@")
    else
        psql -X -q -v ON_ERROR_STOP=1 -h "$(tcp_host "$PG_HOST")" -p "$PG_PORT" -U postgres -d postgres "$@"
    fi
}

# Creates the role (LOGIN CREATEDB, with the URL's password) and the database when
# missing; fixes the password only when the URL could not log in.
pg_provision() {
    local fix_password=$1
    say "creating PostgreSQL role '$PG_USER' and database '$PG_DB' when missing"
    ACTIONS=$((ACTIONS + 1))
    if ((DRY_RUN)); then
        say "would run as the postgres superuser: CREATE ROLE $PG_USER LOGIN CREATEDB PASSWORD '…'; CREATE DATABASE $PG_DB OWNER $PG_USER"
        return 0
    fi
    mkdir -p "$LOGS"
    if ! pg_admin_psql -v role="$PG_USER" -v password="$PG_PASS" -v db="$PG_DB" \
        -v fix_password="$fix_password" >>"$LOGS/postgresql.log" 2>&1 <<'SQL'; then
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', :'role', NULLIF(:'password', ''))
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'role', NULLIF(:'password', ''))
  FROM pg_roles WHERE rolname = :'role' AND :fix_password \gexec
SELECT format('ALTER ROLE %I CREATEDB', :'role')
  FROM pg_roles WHERE rolname = :'role' AND NOT (rolcreatedb OR rolsuper) \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
        tail -n 20 "$LOGS/postgresql.log" >&2
        die "could not create the PostgreSQL role/database (log: $LOGS/postgresql.log)"
    fi
}

ensure_postgres() {
    parse_url "$DATABASE_URL" || die "DATABASE_URL is not a URL: $DATABASE_URL"
    [[ $URL_SCHEME == postgres || $URL_SCHEME == postgresql ]] ||
        die "DATABASE_URL must start with postgres:// (got $URL_SCHEME://)"
    PG_HOST=$URL_HOST PG_PORT=${URL_PORT:-5432} PG_USER=${URL_USER:-${USER:-postgres}}
    PG_PASS=$URL_PASS PG_DB=${URL_PATH:-$PG_USER}
    PG_CAN_CREATEDB=""

    if pg_login_ok && [[ $PG_CAN_CREATEDB == t ]]; then
        note "PostgreSQL: ok ($PG_USER@${PG_HOST:-local}:$PG_PORT/$PG_DB)"
        return 0
    fi
    if ! is_local_host "$PG_HOST"; then
        if [[ $PG_CAN_CREATEDB == f ]]; then
            die "DATABASE_URL: role '$PG_USER' on $PG_HOST lacks CREATEDB, which the tests need (ALTER ROLE $PG_USER CREATEDB)"
        fi
        die "DATABASE_URL does not answer ($PG_HOST:$PG_PORT, database $PG_DB); fix it or unset it to use a local PostgreSQL"
    fi

    if ! have pg_lsclusters || ! have psql; then apt_install postgresql; fi
    if ! { have pg_isready && pg_server_ready; }; then
        pg_start_server
    fi
    if ((DRY_RUN)) || ! pg_login_ok || [[ $PG_CAN_CREATEDB != t ]]; then
        local fix_password=false
        if ! pg_login_ok; then fix_password=true; fi
        pg_provision "$fix_password"
        if ((!DRY_RUN)); then
            if ! pg_login_ok || [[ $PG_CAN_CREATEDB != t ]]; then
                die "still cannot log in with DATABASE_URL after creating the role; check pg_hba.conf (pg_lsclusters shows where it lives)"
            fi
        fi
    fi
    ((DRY_RUN)) || say "PostgreSQL: ready ($PG_USER@${PG_HOST:-local}:$PG_PORT/$PG_DB)"
}

# --- Redis ------------------------------------------------------------------------------

redis_ping() {
    local reply
    if have redis-cli; then
        reply=$(timeout 3 redis-cli --no-auth-warning -u "$REDIS_URL" ping 2>/dev/null) || return 1
    else
        # No client yet: speak RESP over bash's /dev/tcp (no auth in this path).
        # shellcheck disable=SC2016 # expanded by the inner bash
        reply=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "PING\r\n" >&3 && IFS= read -r line <&3 && printf %s "$line"' \
            "$(tcp_host "$REDIS_HOST")" "$REDIS_PORT" 2>/dev/null) || return 1
        reply=${reply#+}
    fi
    [[ ${reply%$'\r'} == PONG ]]
}

ensure_redis() {
    parse_url "$REDIS_URL" || die "REDIS_URL is not a URL: $REDIS_URL"
    [[ $URL_SCHEME == redis ]] || die "REDIS_URL must start with redis:// (got $URL_SCHEME://)"
    REDIS_HOST=$URL_HOST REDIS_PORT=${URL_PORT:-6379} REDIS_PASS=$URL_PASS

    # The test kit starts private redis-servers for stop/restart tests, so the binary is
    # needed even when REDIS_URL points at a server elsewhere.
    if ! have redis-server || ! have redis-cli; then apt_install redis-server; fi

    if redis_ping; then
        note "Redis: ok ($REDIS_HOST:$REDIS_PORT)"
        return 0
    fi
    is_local_host "$REDIS_HOST" ||
        die "REDIS_URL does not answer ($REDIS_HOST:$REDIS_PORT); fix it or unset it to use a local Redis"

    local dir log
    if is_root; then
        dir=/var/lib/redis log=/var/log/redis/redis-haven-$REDIS_PORT.log
    else
        dir=$TOOLS/redis log=$LOGS/redis-$REDIS_PORT.log
    fi
    local start=(redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT"
        --save "" --appendonly no --dir "$dir" --logfile "$log")
    if [[ -n $REDIS_PASS ]]; then start+=(--requirepass "$REDIS_PASS"); fi
    say "starting Redis on port $REDIS_PORT (log: $log)"
    if ((!DRY_RUN)); then mkdir -p "$dir" "$(dirname "$log")"; fi
    change redis "${start[@]}"
    ((DRY_RUN)) && return 0
    wait_for 10 redis_ping || { tail -n 20 "$log" >&2 || true; die "Redis did not answer on port $REDIS_PORT within 10 s (log: $log)"; }
    say "Redis: ready ($REDIS_HOST:$REDIS_PORT)"
}

# --- anvil ------------------------------------------------------------------------------

# Prints the chain id (decimal) the JSON-RPC endpoint reports, or fails.
eth_chain_id() {
    local body='{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' reply
    if have curl; then
        reply=$(curl -fsS --max-time 3 -H 'content-type: application/json' --data "$body" "$ETH_RPC_URL" 2>/dev/null) || return 1
    else
        [[ $ETH_SCHEME == http ]] || return 1
        # shellcheck disable=SC2016 # expanded by the inner bash
        reply=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" || exit 1
            printf "POST /%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" "$2" "$0" "${#3}" "$3" >&3
            cat <&3' "$(tcp_host "$ETH_HOST")" "$ETH_PORT" "$ETH_PATH" "$body" 2>/dev/null) || return 1
    fi
    [[ $reply =~ \"result\":\"0x([0-9a-fA-F]+)\" ]] || return 1
    echo $((16#${BASH_REMATCH[1]}))
}

anvil_arch() {
    case "$(uname -m)" in
        x86_64 | amd64) echo amd64 ;;
        aarch64 | arm64) echo arm64 ;;
        *) die "no anvil npm package for $(uname -m); install foundry's anvil and set ANVIL_BIN" ;;
    esac
}

# Finds anvil the way the test kit does (ANVIL_BIN, .tools, PATH) and installs it
# into .tools from npm when it is nowhere.
ensure_anvil_binary() {
    if [[ -n ${ANVIL_BIN:-} ]]; then
        [[ -x $ANVIL_BIN ]] || die "ANVIL_BIN=$ANVIL_BIN is not an executable"
        return 0
    fi
    local arch package
    arch=$(anvil_arch)
    package="@foundry-rs/anvil-linux-$arch"
    local local_bin="$TOOLS/node_modules/$package/bin/anvil"
    if [[ -x $local_bin ]]; then
        ANVIL_BIN=$local_bin
        return 0
    fi
    if have anvil; then
        ANVIL_BIN=$(command -v anvil)
        return 0
    fi
    have npm || apt_install nodejs npm
    say "installing anvil $ANVIL_VERSION into .tools (npm $package)"
    if ((!DRY_RUN)); then mkdir -p "$TOOLS"; fi
    change npm npm install --prefix "$TOOLS" --no-audit --no-fund "$package@$ANVIL_VERSION"
    ANVIL_BIN=$local_bin
    ((DRY_RUN)) || [[ -x $ANVIL_BIN ]] || die "npm finished but $ANVIL_BIN is missing (log: $LOGS/npm.log)"
}

# Whether the pid file $1 names a live anvil.
anvil_pid_alive() {
    local pid
    [[ -f $1 ]] && pid=$(<"$1") && [[ $pid =~ ^[0-9]+$ ]] &&
        kill -0 "$pid" 2>/dev/null && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == anvil* ]]
}

anvil_answers() { ETH_CHAIN=$(eth_chain_id) && [[ -n $ETH_CHAIN ]]; }

ensure_anvil() {
    parse_url "$ETH_RPC_URL" || die "ETH_RPC_URL is not a URL: $ETH_RPC_URL"
    [[ $URL_SCHEME == http || $URL_SCHEME == https ]] || die "ETH_RPC_URL must start with http:// or https:// (got $URL_SCHEME://)"
    ETH_SCHEME=$URL_SCHEME ETH_HOST=$URL_HOST ETH_PATH=$URL_PATH
    ETH_PORT=${URL_PORT:-$([[ $URL_SCHEME == https ]] && echo 443 || echo 80)}
    ETH_CHAIN=""
    # Per port, so that anvils for different ETH_RPC_URLs do not share a pid file.
    ANVIL_PID_FILE="$TOOLS/anvil-$ETH_PORT.pid"
    ANVIL_LOG="$TOOLS/anvil-$ETH_PORT.log"

    # The test kit spawns its own anvils, so the binary is needed in every case.
    ensure_anvil_binary

    if anvil_answers; then
        note "anvil: ok ($ETH_RPC_URL, chain id $ETH_CHAIN)"
        return 0
    fi
    is_local_host "$ETH_HOST" ||
        die "ETH_RPC_URL does not answer an eth_chainId call ($ETH_RPC_URL); fix it or unset it to use a local anvil"

    if anvil_pid_alive "$ANVIL_PID_FILE"; then
        say "anvil (pid $(<"$ANVIL_PID_FILE")) is running but not answering yet; waiting"
    else
        say "starting anvil on port $ETH_PORT, chain id $ANVIL_CHAIN_ID (log: $ANVIL_LOG)"
        ACTIONS=$((ACTIONS + 1))
        if ((DRY_RUN)); then
            say "would run: setsid nohup $ANVIL_BIN --host 127.0.0.1 --port $ETH_PORT --chain-id $ANVIL_CHAIN_ID &"
            return 0
        fi
        mkdir -p "$TOOLS"
        # Own session: a Ctrl-C aimed at `./x run` or `./x test` must not take anvil down.
        setsid nohup "$ANVIL_BIN" --host 127.0.0.1 --port "$ETH_PORT" --chain-id "$ANVIL_CHAIN_ID" \
            </dev/null >>"$ANVIL_LOG" 2>&1 &
        echo $! >"$ANVIL_PID_FILE"
    fi
    if ! wait_for 20 anvil_answers; then
        tail -n 20 "$ANVIL_LOG" >&2 || true
        die "anvil did not answer on $ETH_RPC_URL within 20 s (log: $ANVIL_LOG)"
    fi
    say "anvil: ready ($ETH_RPC_URL, chain id $ETH_CHAIN, pid $(<"$ANVIL_PID_FILE"))"
}

# Stops every anvil this script started (one pid file per port under .tools).
stop_anvil() {
    local file pid stopped=0
    for file in "$TOOLS"/anvil-*.pid; do
        [[ -e $file ]] || continue
        if anvil_pid_alive "$file"; then
            pid=$(<"$file")
            kill -TERM "$pid"
            # shellcheck disable=SC2016 # expanded by the inner bash
            wait_for 10 bash -c '! kill -0 "$0" 2>/dev/null' "$pid" || kill -KILL "$pid" 2>/dev/null || true
            say "stopped anvil (pid $pid, $(basename "$file" .pid))"
            stopped=1
        fi
        rm -f "$file"
    done
    if ((!stopped)); then say "no anvil started by this script is running"; fi
}

# The operator console's browser tests: Debian's chromium (driven headless) and, from npm
# into .tools, playwright-core (the driver) and axe-core (the accessibility scan).
ensure_browser() {
    if [[ -n ${CHROMIUM_BIN:-} ]]; then
        [[ -x $CHROMIUM_BIN ]] || die "CHROMIUM_BIN=$CHROMIUM_BIN is not an executable"
    elif have chromium; then
        CHROMIUM_BIN=$(command -v chromium)
    else
        apt_install chromium
        CHROMIUM_BIN=/usr/bin/chromium
    fi
    local missing=()
    [[ -f $TOOLS/node_modules/playwright-core/package.json ]] || missing+=("playwright-core@$PLAYWRIGHT_VERSION")
    [[ -f $TOOLS/node_modules/axe-core/axe.min.js ]] || missing+=("axe-core@$AXE_VERSION")
    if ((${#missing[@]})); then
        have npm || apt_install nodejs npm
        say "installing ${missing[*]} into .tools (npm)"
        if ((!DRY_RUN)); then mkdir -p "$TOOLS"; fi
        change npm npm install --prefix "$TOOLS" --no-audit --no-fund "${missing[@]}"
    else
        note "browser: ok ($CHROMIUM_BIN, playwright-core and axe-core in .tools)"
    fi
}

# --- main -------------------------------------------------------------------------------

if [[ $MODE == stop-anvil ]]; then
    stop_anvil
    exit 0
fi

DATABASE_URL=${DATABASE_URL:-$DEFAULT_DATABASE_URL}
REDIS_URL=${REDIS_URL:-$DEFAULT_REDIS_URL}
ETH_RPC_URL=${ETH_RPC_URL:-$DEFAULT_ETH_RPC_URL}

ensure_postgres
ensure_redis
ensure_anvil
ensure_browser

if ((DRY_RUN)); then
    if ((ACTIONS)); then say "dry run: $ACTIONS change(s) would be made"; else say "dry run: nothing to change"; fi
fi

shell_quote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

if [[ $MODE == env ]]; then
    for var in DATABASE_URL REDIS_URL ETH_RPC_URL ANVIL_BIN CHROMIUM_BIN; do
        printf 'export %s=%s\n' "$var" "$(shell_quote "${!var}")"
    done
else
    printf 'DATABASE_URL=%s\nREDIS_URL=%s\nETH_RPC_URL=%s\n' "$DATABASE_URL" "$REDIS_URL" "$ETH_RPC_URL"
fi
