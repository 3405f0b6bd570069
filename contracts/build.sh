#!/usr/bin/env bash
# Regenerates artifacts/HavenToken.json from src/HavenToken.sol.
# Needs node and npm (registry access on first run); the Rust build only reads the artifact.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --silent
node compile.js
