#!/usr/bin/env bash
# Builds haven-api and haven-worker and runs both in the foreground, each log line
# prefixed with [api] or [worker].
#
# Usage: scripts/run-stack.sh [--release] [API_BIN WORKER_BIN]
#
#   --release            build with the release profile
#   API_BIN WORKER_BIN   run these executables instead of building (e.g. shipped binaries)
#
# Ctrl-C, SIGTERM or SIGHUP sends SIGTERM to both and waits for them to finish (a second
# Ctrl-C kills them). When one exits on its own, the other is stopped the same way and
# the script exits non-zero. Expects DATABASE_URL / REDIS_URL / ETH_RPC_URL in the
# environment (`./x run` sets them from scripts/services.sh).
#
# In development, when HAVEN_TOKEN_ADDRESS is unset, the HAVEN token is deployed on the node
# at ETH_RPC_URL with `haven-admin chain deploy` (minter: HAVEN_TOKEN_MINTER, default anvil's
# first dev account), recorded in .tools/haven-token-<port>.env and reused on later runs
# while the node still has it; HAVEN_TOKEN_ADDRESS is exported to the api and worker.
set -euo pipefail

usage() { sed -n '2,19s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

profile=()
bins=()
for arg in "$@"; do
    case "$arg" in
        --release) profile=(--release) ;;
        -h | --help) usage; exit 0 ;;
        -*) echo "run-stack: unknown option '$arg'" >&2; usage >&2; exit 2 ;;
        *) bins+=("$arg") ;;
    esac
done
if ((${#bins[@]} != 0 && ${#bins[@]} != 2)); then
    echo "run-stack: give both API_BIN and WORKER_BIN, or neither" >&2
    exit 2
fi

export HAVEN_ENV="${HAVEN_ENV:-development}"
export HAVEN_LOG_FORMAT="${HAVEN_LOG_FORMAT:-pretty}"
export RUST_LOG="${RUST_LOG:-info}"
export HAVEN_API_ADDR="${HAVEN_API_ADDR:-127.0.0.1:8080}"
export HAVEN_WORKER_ADDR="${HAVEN_WORKER_ADDR:-127.0.0.1:8081}"
# Seconds the binaries get to drain after SIGTERM before they are killed.
stop_timeout="${HAVEN_STOP_TIMEOUT:-30}"

if [[ -t 1 && -z ${NO_COLOR:-} ]]; then
    declare -A tags=([api]=$'\e[36m[api]\e[0m' [worker]=$'\e[35m[worker]\e[0m' [stack]=$'\e[1m[stack]\e[0m')
else
    declare -A tags=([api]='[api]' [worker]='[worker]' [stack]='[stack]')
fi
say() { printf '%s %s\n' "${tags[stack]}" "$*"; }

# Prints the path of the binary cargo built for package $1, from cargo's JSON messages in $2.
executable_of() {
    local package=$1 messages=$2 line exe="" fallback=""
    while IFS= read -r line; do
        [[ $line == *'"reason":"compiler-artifact"'* && $line == *'"kind":["bin"]'* ]] || continue
        # Package ids look like path+file:///…/bins/api#haven-api@0.1.0 (or …/haven-api#0.1.0).
        [[ $line == *"#$package@"* || $line == *"/$package#"* ]] || continue
        [[ $line =~ \"executable\":\"([^\"]+)\" ]] || continue
        if [[ $line == *"\"name\":\"$package\""* ]]; then exe=${BASH_REMATCH[1]}; fi
        fallback=${BASH_REMATCH[1]}
    done <"$messages"
    exe=${exe:-$fallback}
    [[ -n $exe ]] || { echo "run-stack: cargo built no binary for $package" >&2; return 1; }
    echo "$exe"
}

if ((${#bins[@]} == 0)); then
    messages=$(mktemp)
    trap 'rm -f "$messages"' EXIT
    say "building haven-api, haven-worker and haven-admin${profile:+ (release)}"
    cargo build "${profile[@]}" -p haven-api -p haven-worker -p haven-admin --bins --message-format=json-render-diagnostics >"$messages"
    bins=("$(executable_of haven-api "$messages")" "$(executable_of haven-worker "$messages")")
    admin_bin="$(executable_of haven-admin "$messages")"
else
    admin_bin="${HAVEN_ADMIN_BIN:-$(dirname "${bins[0]}")/haven-admin}"
fi

# The dev token: deployed once per node, reused while the node keeps it. Its minter is a
# custody wallet (dev master key and wallet created on first use, the wallet funded with gas
# from anvil's first dev account), so the worker's chain_monitor job runs as in production.
if [[ $HAVEN_ENV == development && -z ${HAVEN_TOKEN_ADDRESS:-} ]]; then
    if [[ -x $admin_bin ]]; then
        rpc_url="${ETH_RPC_URL:-http://127.0.0.1:8545}"
        rpc_port="${rpc_url##*:}"
        rpc_port="${rpc_port%%/*}"
        tools_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.tools"
        token_file="$tools_dir/haven-token-${rpc_port}.env"
        mkdir -p "$tools_dir"
        if [[ -z ${HAVEN_MASTER_KEYS:-} ]]; then
            keys_file="$tools_dir/dev-master-keys"
            if [[ ! -s $keys_file ]]; then
                (umask 077 && "$admin_bin" custody keygen >"$keys_file" 2>/dev/null)
                say "generated a development master key in $keys_file"
            fi
            HAVEN_MASTER_KEYS="$(cat "$keys_file")"
            export HAVEN_MASTER_KEYS
        fi
        minter="${HAVEN_TOKEN_MINTER:-}"
        if [[ -z $minter ]]; then
            export HAVEN_CHAIN_WALLET="${HAVEN_CHAIN_WALLET:-dev-minter}"
            if minter=$("$admin_bin" custody wallet create --id "$HAVEN_CHAIN_WALLET" --chain evm --if-absent --address-only); then
                # Gas for the minter: 100 ETH from anvil's unlocked first account.
                curl -sf -X POST -H 'content-type: application/json' "$rpc_url" --data \
                    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_sendTransaction\",\"params\":[{\"from\":\"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266\",\"to\":\"$minter\",\"value\":\"0x56bc75e2d63100000\"}]}" \
                    >/dev/null || say "could not fund $minter with gas on $rpc_url"
            else
                say "could not create the custody wallet $HAVEN_CHAIN_WALLET; the token gets no minter"
                minter=""
            fi
        fi
        if [[ -n $minter ]] && deployed=$("$admin_bin" chain deploy --minter "$minter" --out "$token_file"); then
            HAVEN_TOKEN_ADDRESS="$(sed -n 's/^HAVEN_TOKEN_ADDRESS=//p' "$token_file")"
            export HAVEN_TOKEN_ADDRESS
            say "HAVEN token $HAVEN_TOKEN_ADDRESS (minter $minter${HAVEN_CHAIN_WALLET:+, custody wallet $HAVEN_CHAIN_WALLET}): $deployed"
        else
            say "could not deploy the HAVEN token on $rpc_url; api and worker run without it"
        fi
    else
        say "no haven-admin at $admin_bin (set HAVEN_ADMIN_BIN): HAVEN token not deployed"
    fi
fi

declare -A pids=()
declare -A names=()
prefixers=()

# Starts $2 as component $1. Its own session keeps the terminal's Ctrl-C away from it, so
# that it receives exactly one SIGTERM from this script; the log prefixer ignores those
# signals so it drains the last lines written during shutdown.
start() {
    local name=$1 bin=$2 tag=${tags[$1]} out
    exec {out}> >(trap '' INT TERM HUP; exec sed -u "s/^/${tag//\//\\/} /")
    prefixers+=("$!")
    setsid "$bin" </dev/null >&"$out" 2>&1 {out}>&- &
    pids[$name]=$!
    names[$!]=$name
    exec {out}>&-
}

stopping=""
on_signal() {
    if [[ -n $stopping ]]; then
        say "$1 again: killing ${!pids[*]}"
        kill -KILL "${pids[@]}" 2>/dev/null || true
    fi
    stopping=$1
}
trap 'on_signal SIGINT' INT
trap 'on_signal SIGTERM' TERM
trap 'on_signal SIGHUP' HUP

start api "${bins[0]}"
start worker "${bins[1]}"
say "api (pid ${pids[api]}) on http://$HAVEN_API_ADDR, worker (pid ${pids[worker]}) on http://$HAVEN_WORKER_ADDR; Ctrl-C stops both"

# Wait for the first of: a signal (wait returns early), or a binary exiting.
failed=""
while [[ -z $stopping ]]; do
    exited=""
    status=0
    wait -n -p exited "${pids[@]}" || status=$?
    [[ -n $stopping ]] && break
    [[ -n $exited ]] || continue
    failed="${names[$exited]} exited with status $status"
    unset "pids[${names[$exited]}]"
    break
done

if [[ -n $failed ]]; then
    say "$failed; stopping the rest"
else
    say "$stopping received; stopping api and worker"
fi

# SIGTERM, then wait; a watchdog kills whatever is still running after the timeout.
kill -TERM "${pids[@]}" 2>/dev/null || true
(
    sleep "$stop_timeout" &
    sleeper=$!
    trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
    wait "$sleeper"
    say "still running after ${stop_timeout} s: killing"
    kill -KILL "${pids[@]}" 2>/dev/null || true
) &
watchdog=$!

clean=1
stopped=()
for name in "${!pids[@]}"; do
    status=0
    # A signal interrupts wait (status > 128) without reaping; wait again until it is gone.
    while true; do
        wait "${pids[$name]}" && status=0 || status=$?
        kill -0 "${pids[$name]}" 2>/dev/null || break
    done
    stopped+=("$name stopped (status $status)")
    ((status == 0)) || clean=0
done
kill -TERM "$watchdog" 2>/dev/null || true
wait "$watchdog" 2>/dev/null || true
# Let the prefixers print the last log lines before our own summary (2 s at most).
for pid in "${prefixers[@]}"; do
    for _ in {1..40}; do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
done
for line in "${stopped[@]}"; do say "$line"; done

if [[ -n $failed ]]; then
    exit 1
fi
((clean)) || exit 1
say "stopped cleanly"
