#!/usr/bin/env bash
# Scans two real MCP servers from other projects, on loopback only:
#   1. @modelcontextprotocol/server-everything (npm) in Streamable HTTP mode;
#   2. a server built with the official Python SDK (PyPI `mcp`), over stdio.
# Installs them under target/real-servers (pinned versions), writes every report format there,
# and prints the text reports. docs/real-servers.md records the hand-checked findings.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=target/real-servers
mkdir -p "$OUT"
EVERYTHING_VERSION=2026.8.31
MCP_PY_VERSION=1.30.0

cargo build --release -p mcproof
MCPROOF=target/release/mcproof

if [ ! -d "$OUT/npm/node_modules/@modelcontextprotocol/server-everything" ]; then
    mkdir -p "$OUT/npm"
    (cd "$OUT/npm" && npm init -y >/dev/null && npm install --no-audit --no-fund "@modelcontextprotocol/server-everything@$EVERYTHING_VERSION" >/dev/null)
fi
if [ ! -x "$OUT/py/bin/python" ]; then
    python3 -m venv "$OUT/py"
    "$OUT/py/bin/pip" install -q "mcp==$MCP_PY_VERSION"
fi

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
PORT=$PORT timeout 300 node -r "$PWD/scripts/real-servers/loopback.cjs" \
    "$OUT/npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js" streamableHttp \
    >"$OUT/everything.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/mcp" && break
    sleep 0.2
done

status=0
echo "== server-everything $EVERYTHING_VERSION (Streamable HTTP, 127.0.0.1:$PORT)"
"$MCPROOF" scan "http://127.0.0.1:$PORT/mcp" --no-color --seed 1 --fail-on never \
    --report json="$OUT/everything.json" --report markdown="$OUT/everything.md" \
    --report sarif="$OUT/everything.sarif" --report junit="$OUT/everything.xml" --report html="$OUT/everything.html" \
    | tee "$OUT/everything.txt" || status=$?

echo "== Python SDK mcp $MCP_PY_VERSION FastMCP (stdio)"
"$MCPROOF" scan --no-color --seed 1 --fail-on never \
    --report json="$OUT/python.json" --report markdown="$OUT/python.md" \
    --report sarif="$OUT/python.sarif" --report junit="$OUT/python.xml" --report html="$OUT/python.html" \
    -- "$OUT/py/bin/python" scripts/real-servers/python_stdio_server.py \
    | tee "$OUT/python.txt" || status=$?
exit $status
