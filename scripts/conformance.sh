#!/usr/bin/env bash
# Runs the official MCP conformance suite (@modelcontextprotocol/conformance, pinned in
# conformance/package-lock.json together with the Node 22 it needs) against
# `mcproof-server --profile conformance --auth-policy public-tier` on a loopback port (all hardening
# and authentication on; the suite has no way to send credentials, so its fixtures are public-tier),
# and exits with the suite's code.
#
#   scripts/conformance.sh                 # the active suite
#   CONFORMANCE_ARGS="--scenario ping" scripts/conformance.sh
#
# Results: target/conformance/server-<scenario>-<time>/checks.json, the server's log in
# target/conformance/server.log. Everything stays on 127.0.0.1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT="$TARGET_DIR/conformance"
SERVER_BIN="$TARGET_DIR/debug/mcproof-server"
NPM_DIR="$ROOT/conformance"
NODE="$NPM_DIR/node_modules/node/bin/node"
SUITE="$NPM_DIR/node_modules/@modelcontextprotocol/conformance/dist/index.js"
SUITE_VERSION="0.1.16"
STARTUP_SECS=30
SUITE_TIMEOUT_SECS=300

log() { printf 'conformance: %s\n' "$*" >&2; }

SERVER_PID=""
SUITE_PID=""
cleanup() {
    if [[ -n "$SUITE_PID" ]] && kill -0 "$SUITE_PID" 2>/dev/null; then
        kill "$SUITE_PID" 2>/dev/null || true
        wait "$SUITE_PID" 2>/dev/null || true
    fi
    SUITE_PID=""
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

# 1. The server.
log "building mcproof-server"
cargo build --quiet -p mcproof-server

# 2. The suite and Node 22, from the lockfile; skipped when already installed at the pinned version.
installed_version() {
    [[ -x "$NODE" && -f "$SUITE" ]] || return 1
    "$NODE" -e 'process.stdout.write(require(process.argv[1]).version)' \
        "$NPM_DIR/node_modules/@modelcontextprotocol/conformance/package.json" 2>/dev/null
}
if [[ "$(installed_version || true)" != "$SUITE_VERSION" ]]; then
    log "installing the conformance suite and Node 22 (npm ci)"
    (cd "$NPM_DIR" && npm ci --no-audit --no-fund --loglevel=error)
fi
NODE_MAJOR="$("$NODE" -p 'process.versions.node.split(".")[0]')"
if ((NODE_MAJOR < 22)); then
    log "the suite needs Node >= 22, $NODE is $("$NODE" --version)"
    exit 2
fi

# 3. Start the server on an ephemeral loopback port and wait for its address.
rm -rf "$OUT"
mkdir -p "$OUT"
"$SERVER_BIN" --profile conformance --auth-policy public-tier --listen 127.0.0.1:0 >"$OUT/server.stdout" 2>"$OUT/server.log" &
SERVER_PID=$!

URL=""
deadline=$((SECONDS + STARTUP_SECS))
while ((SECONDS < deadline)); do
    line="$(grep -m1 -Eo 'listening on http://[^[:space:]]+' "$OUT/server.stdout" 2>/dev/null || true)"
    if [[ -n "$line" ]]; then
        URL="${line#listening on }"
        break
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        log "mcproof-server exited before it was ready; its output:"
        cat "$OUT/server.stdout" "$OUT/server.log" >&2
        exit 1
    fi
    sleep 0.2
done
if [[ -z "$URL" ]]; then
    log "mcproof-server did not report its address within ${STARTUP_SECS}s; its log:"
    tail -n 100 "$OUT/server.log" >&2
    exit 1
fi
if ! [[ "$URL" =~ ^http://(127\.0\.0\.1|localhost|\[::1\]):[0-9]+/mcp$ ]]; then
    log "refusing to test a non-loopback address: $URL"
    exit 1
fi
log "server at $URL (pid $SERVER_PID)"

# 4. The suite. Node 22 first on PATH in case the suite spawns `node` itself.
ARGS=(server --url "$URL" --suite active -o "$OUT")
if [[ -f "$NPM_DIR/baseline.yml" ]]; then
    ARGS+=(--expected-failures "$NPM_DIR/baseline.yml")
fi
# shellcheck disable=SC2206 # reason: CONFORMANCE_ARGS is a whitespace-separated option list on purpose
ARGS+=(${CONFORMANCE_ARGS:-})
# In the background, so that a signal runs the trap at once rather than after the suite.
PATH="$(dirname "$NODE"):$PATH" timeout "$SUITE_TIMEOUT_SECS" "$NODE" "$SUITE" "${ARGS[@]}" &
SUITE_PID=$!
set +e
wait "$SUITE_PID"
RC=$?
set -e
SUITE_PID=""
cleanup

# 5. On failure, say why: the failing checks and the server's log.
if ((RC != 0)); then
    if ((RC == 124)); then
        log "the suite did not finish within ${SUITE_TIMEOUT_SECS}s"
    fi
    log "failing checks:"
    # shellcheck disable=SC2016 # reason: the ${...} are JavaScript template literals
    "$NODE" -e '
        const fs = require("fs"), path = require("path");
        const dir = process.argv[1];
        for (const run of fs.readdirSync(dir).sort()) {
            const file = path.join(dir, run, "checks.json");
            if (!fs.existsSync(file)) continue;
            for (const c of JSON.parse(fs.readFileSync(file, "utf8"))) {
                if (c.status !== "FAILURE" && c.status !== "WARNING") continue;
                console.error(`  ${c.status} ${run.replace(/^server-/, "").replace(/-\d{4}-\d\d-\d\dT.*$/, "")} [${c.id}] ${c.errorMessage ?? ""}`);
                if (c.details) console.error(`    details: ${JSON.stringify(c.details).slice(0, 600)}`);
            }
        }' "$OUT" || true
    log "server log (last 100 lines of $OUT/server.log):"
    tail -n 100 "$OUT/server.log" >&2 || true
fi
exit "$RC"
