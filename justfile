# Developer and CI entry points. Run through ./x (it installs just when missing):
#   ./x run    services + migrations + api and worker in the foreground
#   ./x test   services + every test in the workspace

set shell := ["bash", "-euo", "pipefail", "-c"]
set positional-arguments := true

# The recipe list.
default:
    @{{ just_executable() }} --justfile {{ justfile() }} --list --unsorted

# Install/start PostgreSQL, Redis and anvil when needed and print their URLs.
services *args:
    scripts/services.sh "$@"

# Apply the database migrations (haven-admin migrate) to DATABASE_URL.
migrate:
    #!/usr/bin/env bash
    set -euo pipefail
    service_env="$(scripts/services.sh --env)"
    eval "$service_env"
    cargo run -q -p haven-admin -- migrate

# Bring up services, migrate, then run haven-api and haven-worker in the foreground (Ctrl-C stops both).
run *args:
    #!/usr/bin/env bash
    set -euo pipefail
    service_env="$(scripts/services.sh --env)"
    eval "$service_env"
    cargo run -q -p haven-admin -- migrate
    exec scripts/run-stack.sh "$@"

# Run every test of the workspace against the local services (extra args go to cargo test).
test *args:
    #!/usr/bin/env bash
    set -euo pipefail
    service_env="$(scripts/services.sh --env)"
    eval "$service_env"
    tools_env="$(scripts/test-tools.sh --env)"
    eval "$tools_env"
    printf 'test: DATABASE_URL=%s REDIS_URL=%s ETH_RPC_URL=%s\n' "$DATABASE_URL" "$REDIS_URL" "$ETH_RPC_URL" >&2
    cargo test --workspace --all-features --no-fail-fast "$@"

# Formatting and clippy, warnings as errors.
lint:
    #!/usr/bin/env bash
    set -euo pipefail
    # A minimal rustup profile (as in many CI images) has neither component.
    if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
        rustup component add rustfmt clippy
    fi
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --all-features -- -D warnings

# Licenses, banned crates (openssl/native-tls) and sources, per deny.toml; works offline.
deny:
    #!/usr/bin/env bash
    set -euo pipefail
    if ! cargo deny --version >/dev/null 2>&1; then
        echo "deny: installing cargo-deny (once)" >&2
        cargo install cargo-deny --locked
    fi
    # cargo-deny reads every package manifest of the lock file, including other
    # platforms' crates that no build has downloaded yet; fetch them (a no-op when cached).
    cargo fetch -q
    cargo deny --offline check --hide-inclusion-graph licenses bans sources

# Criterion benchmarks of every crate (extra args go to cargo bench).
bench *args:
    cargo bench --workspace "$@"

# The release binaries as separate processes over loopback, driven by wrk: each figure as a
# ratio against a baseline of the same run (scripts/bench-system.sh; docs/BENCHMARKS.md).
bench-system:
    scripts/bench-system.sh

# Run every cargo-fuzz target under crates/*/fuzz for the given seconds (optionally only the named targets).
fuzz seconds="60" *targets:
    #!/usr/bin/env bash
    set -euo pipefail
    seconds="$1"
    shift
    [[ $seconds =~ ^[0-9]+$ ]] || { echo "fuzz: seconds must be a number, got '$seconds'" >&2; exit 2; }
    if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
        echo "fuzz: cargo-fuzz and a nightly toolchain are needed: rustup toolchain install nightly && cargo install cargo-fuzz --locked" >&2
        exit 1
    fi
    ran=0
    for fuzz_dir in crates/*/fuzz; do
        [[ -f $fuzz_dir/Cargo.toml ]] || continue
        crate_dir="$(dirname "$fuzz_dir")"
        for target in $(cd "$crate_dir" && cargo +nightly fuzz list); do
            if (($#)) && [[ " $* " != *" $target "* ]]; then continue; fi
            echo "fuzz: $crate_dir $target for ${seconds}s" >&2
            (cd "$crate_dir" && cargo +nightly fuzz run "$target" -- -max_total_time="$seconds")
            ran=$((ran + 1))
        done
    done
    if ((ran == 0)); then
        echo "fuzz: no fuzz targets found under crates/*/fuzz${1:+ matching: $*}" >&2
        exit 1
    fi
    echo "fuzz: $ran target(s) ran for ${seconds}s each without a crash" >&2

# Fuzz a live api with schemathesis against its /openapi.json (no 5xx, no schema violations).
fuzz-api seconds="120" examples="25":
    #!/usr/bin/env bash
    set -euo pipefail
    service_env="$(scripts/services.sh --env)"
    eval "$service_env"
    scripts/fuzz-api.sh "$1" "$2"
