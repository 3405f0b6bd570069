#!/usr/bin/env bash
# Makes sure the helper programs some tests drive are present: a Python virtualenv under
# .tools/venv with the PyPI packages `standardwebhooks` (an independent webhook signature
# check) and `aiosmtpd` (a real local SMTP server), and `promtool` (Debian package
# `prometheus`, which checks deploy/prometheus/alerts.yml). Idempotent and fast when all is
# there.
#
# Usage: scripts/test-tools.sh [--env]
#   --env   print only `export PATH=...` (the venv's bin first) for `eval`
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.tools/venv"
PACKAGES=(standardwebhooks aiosmtpd)
MODULES="import standardwebhooks, aiosmtpd"

say() { printf 'test-tools: %s\n' "$*" >&2; }

if [[ ! -x $VENV/bin/python3 ]]; then
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
            say "python3 with venv is missing; install python3 and python3-venv"
            exit 1
        fi
        say "installing python3 and python3-venv (Debian packages)"
        mkdir -p "$ROOT/.tools/logs"
        DEBIAN_FRONTEND=noninteractive apt-get update >>"$ROOT/.tools/logs/apt.log" 2>&1
        DEBIAN_FRONTEND=noninteractive apt-get install -y python3 python3-venv >>"$ROOT/.tools/logs/apt.log" 2>&1
    fi
    say "creating $VENV"
    python3 -m venv "$VENV"
fi

if ! "$VENV/bin/python3" -c "$MODULES" >/dev/null 2>&1; then
    say "installing ${PACKAGES[*]} from PyPI into $VENV"
    "$VENV/bin/python3" -m pip install --quiet --disable-pip-version-check "${PACKAGES[@]}" >&2
fi

if ! command -v promtool >/dev/null 2>&1; then
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        say "promtool is missing; install the Debian package prometheus (apt-get install prometheus)"
        exit 1
    fi
    say "installing promtool (Debian package prometheus)"
    mkdir -p "$ROOT/.tools/logs"
    DEBIAN_FRONTEND=noninteractive apt-get update >>"$ROOT/.tools/logs/apt.log" 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus \
        >>"$ROOT/.tools/logs/apt.log" 2>&1
fi

if [[ ${1:-} == --env ]]; then
    printf 'export PATH=%q\n' "$VENV/bin:$PATH"
fi
