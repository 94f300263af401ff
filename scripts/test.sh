#!/usr/bin/env bash
# Installs what the tests need and runs them all: format, lints, the cargo test suites, and the
# official MCP conformance suite against the reference server, and a smoke run of every fuzz target.
# Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain components"
rustup component add rustfmt clippy >/dev/null 2>&1 || true

step "system packages: Chromium (renders the HTML report in a test), redis-server (shared-state tests)"
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if [ ${#need[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
export MCPROOF_REQUIRE_CHROMIUM=1

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
cargo test --workspace --locked

step "official MCP conformance suite"
scripts/conformance.sh

step "fuzz smoke run: every cargo-fuzz target for 10 s (nightly toolchain; cargo-fuzz installed if missing)"
fuzz/nightly.sh --smoke
