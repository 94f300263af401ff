#!/usr/bin/env bash
# benches/load.sh [SECONDS] — load test of the reference server, secure vs. security off.
#
# Drives `tools/call query_products` (small arguments) with wrk at a fixed connection count
# against two instances of the release `mcproof-server`, under the same load:
#
#   (A) secure: the default configuration (auth policy `required`; an API key made with
#       `mcproof-server keys create` sent as `Authorization: Bearer`; every rate-limit layer
#       checked; schema validation; sanitization; the hash-chained audit log written to a file),
#       with the rate limits raised only so far that the run measures throughput, not 429s;
#   (B) security off, with existing flags only: `--auth-policy public` (no credential is
#       checked), every rate limit set to 100000000/min burst 1000000 (never trips), and no
#       audit file (the audit chain is still computed, its line is dropped by the log filter).
#       The rate limiter itself still runs (only its quotas differ). Input-schema validation,
#       output sanitization, Host/Origin/protocol-version checks and the body and JSON limits
#       cannot be switched off by any flag (on purpose: no release build can be weakened by
#       configuration) and stay on in (B). So (B) is "security off as far as the shipped binary
#       allows": what differs is authentication + authorization of every request and the audit
#       line written to disk per call; the cost of the always-on controls is not in the ratio
#       (the in-process `overhead` criterion bench of issue 6 measures the whole stack).
#
# Prints and writes target/load/summary.md and target/load/summary.json: requests/s and
# p50/p99 latency for both, non-2xx counts, and the ratio secure/off throughput (target >= 0.70).
#
# Only 127.0.0.1 is contacted. Every step is bounded in time; the servers are killed on every
# exit path (at most about ROUNDS x 2 x (SECONDS + WARMUP + 5) s after the build). Environment
# knobs: THREADS (2), CONNECTIONS (32), WARMUP seconds (3), ROUNDS (3: each round runs A and B,
# alternating the order; the headline figures are the medians over rounds, because the machine
# may be shared),
# SECURE_RATE (per-minute/burst for every layer in A, default 6000000/100000 = 100k req/s),
# SKIP_BUILD=1 to use the existing release binary.
set -euo pipefail

DURATION="${1:-20}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-32}"
WARMUP="${WARMUP:-3}"
ROUNDS="${ROUNDS:-3}"
SECURE_RATE="${SECURE_RATE:-6000000/100000}"
OFF_RATE="100000000/1000000"

for v in DURATION THREADS CONNECTIONS WARMUP ROUNDS; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || { echo "load.sh: $v must be a whole number (got '${!v}')" >&2; exit 2; }
done
((DURATION >= 1 && DURATION <= 600)) || { echo "load.sh: SECONDS must be 1..600" >&2; exit 2; }
((ROUNDS >= 1 && ROUNDS <= 10)) || { echo "load.sh: ROUNDS must be 1..10" >&2; exit 2; }
((CONNECTIONS >= THREADS && CONNECTIONS <= 512)) || { echo "load.sh: need THREADS <= CONNECTIONS <= 512" >&2; exit 2; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT_DIR="$TARGET_DIR/load"
LUA="$ROOT/benches/load/mcp_tools_call.lua"
mkdir -p "$OUT_DIR"
WORK="$(mktemp -d "$OUT_DIR/run.XXXXXX")"

log() { printf '[load] %s\n' "$*" >&2; }

# ---------------------------------------------------------------- cleanup on every exit path
PIDS=()
cleanup() {
  local rc=$?
  for pid in "${PIDS[@]:-}"; do
    if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; fi
  done
  for pid in "${PIDS[@]:-}"; do
    [[ -z "$pid" ]] && continue
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- tools
as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo -n "$@"
  else return 1; fi
}
need_pkgs=()
command -v wrk >/dev/null || need_pkgs+=(wrk)
command -v curl >/dev/null || need_pkgs+=(curl)
command -v python3 >/dev/null || need_pkgs+=(python3)
if ((${#need_pkgs[@]})); then
  log "installing ${need_pkgs[*]} (Debian packages)"
  if ! as_root env DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq "${need_pkgs[@]}" >/dev/null 2>&1; then
    as_root timeout 300 apt-get update -qq >/dev/null 2>&1 || true
    as_root env DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq "${need_pkgs[@]}" >/dev/null \
      || { echo "load.sh: cannot install ${need_pkgs[*]}; install them (apt-get install ${need_pkgs[*]}) and rerun" >&2; exit 2; }
  fi
fi
WRK_VERSION="$(wrk -v 2>&1 | head -n1 | sed 's/ *Copyright.*//' || true)"

# ---------------------------------------------------------------- build
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  log "building mcproof-server (release)"
  (cd "$ROOT" && timeout 1800 cargo build --release --quiet -p mcproof-server --bin mcproof-server)
fi
BIN="$TARGET_DIR/release/mcproof-server"
[[ -x "$BIN" ]] || { echo "load.sh: $BIN missing (build failed?)" >&2; exit 2; }

# ---------------------------------------------------------------- servers
# start_server NAME ARGS... : starts the server on 127.0.0.1:0, sets URL_<NAME>.
start_server() {
  local name="$1"; shift
  local out="$WORK/$name.stdout" err="$WORK/$name.stderr"
  : >"$out"; : >"$err"  # exist before the background child opens them
  "$BIN" --listen 127.0.0.1:0 --log warn "$@" >"$out" 2>"$err" &
  local pid=$!
  PIDS+=("$pid")
  local url=""
  for _ in $(seq 100); do
    url="$(sed -n 's/^listening on \(http:\/\/127\.0\.0\.1:[0-9]*\/mcp\)$/\1/p' "$out" | head -n1)"
    [[ -n "$url" ]] && break
    kill -0 "$pid" 2>/dev/null || { echo "load.sh: server $name exited:" >&2; cat "$err" >&2; exit 1; }
    sleep 0.1
  done
  [[ -n "$url" ]] || { echo "load.sh: server $name did not report its address in 10 s" >&2; cat "$err" >&2; exit 1; }
  printf -v "URL_$name" '%s' "$url"
  printf -v "PID_$name" '%s' "$pid"
  log "$name: pid $pid, $url"
}

# mcp_post URL KEY SESSION BODY HEADERS_OUT : one POST, prints the body, returns curl's status.
mcp_post() {
  local url="$1" key="$2" sid="$3" body="$4" hdr="$5"
  local -a args=(-sS --max-time 10 -X POST "$url" -D "$hdr"
    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream'
    -H 'MCP-Protocol-Version: 2025-11-25' --data-binary "$body")
  [[ -n "$key" ]] && args+=(-H "Authorization: Bearer $key")
  [[ -n "$sid" ]] && args+=(-H "Mcp-Session-Id: $sid")
  curl "${args[@]}"
}

CALL_BODY='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"query_products","arguments":{"category":"tools","limit":3}}}'

# make_sessions NAME KEY : one initialized session per connection, ids in $WORK/NAME.sessions.
make_sessions() {
  local name="$1" key="$2" url_var="URL_$1"
  local url="${!url_var}" file="$WORK/$name.sessions" hdr="$WORK/hdr"
  : >"$file"
  for _ in $(seq "$CONNECTIONS"); do
    mcp_post "$url" "$key" "" \
      '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"mcproof-load","version":"1"}}}' \
      "$hdr" >/dev/null
    local sid
    sid="$(tr -d '\r' <"$hdr" | sed -n 's/^[Mm][Cc][Pp]-[Ss]ession-[Ii][Dd]: *//p' | head -n1)"
    [[ -n "$sid" ]] || { echo "load.sh: $name: initialize gave no session id:" >&2; cat "$hdr" >&2; exit 1; }
    mcp_post "$url" "$key" "$sid" '{"jsonrpc":"2.0","method":"notifications/initialized"}' "$hdr" >/dev/null
    echo "$sid" >>"$file"
  done
  # The call the load repeats must succeed (a JSON-RPC error or isError would also be HTTP 200).
  local sid body
  sid="$(head -n1 "$file")"
  body="$(mcp_post "$url" "$key" "$sid" "$CALL_BODY" "$hdr")"
  if ! grep -q '"count":3' <<<"$body" || grep -q '"isError":true\|"error":' <<<"$body"; then
    echo "load.sh: $name: the benchmark call does not succeed: $body" >&2; exit 1
  fi
  log "$name: $CONNECTIONS sessions initialized; sample call OK"
}

# run_wrk NAME KEY SECS OUT_JSON OUT_TXT
run_wrk() {
  local name="$1" key="$2" secs="$3" json="$4" txt="$5" url_var="URL_$1"
  MCPROOF_LOAD_SESSIONS="$WORK/$name.sessions" MCPROOF_LOAD_KEY="$key" MCPROOF_LOAD_OUT="$json" \
    timeout $((secs + 30)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${secs}s" --timeout 5s --latency \
    -s "$LUA" "${!url_var}" >"$txt" 2>&1 || { echo "load.sh: wrk failed for $name:" >&2; cat "$txt" >&2; exit 1; }
  local pid_var="PID_$1"
  kill -0 "${!pid_var}" 2>/dev/null || { echo "load.sh: server $name died during the run" >&2; exit 1; }
}

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
log "load average before: $LOAD_BEFORE; ${DURATION}s per run, wrk -t$THREADS -c$CONNECTIONS, $ROUNDS round(s)"

KEYS="$WORK/keys.json"
API_KEY="$("$BIN" keys create --store "$KEYS" --principal bench --scopes mcp:read,mcp:write 2>/dev/null | head -n1 | tr -d '[:space:]')"
[[ -n "$API_KEY" ]] || { echo "load.sh: keys create printed no key" >&2; exit 1; }
AUDIT="$WORK/secure-audit.jsonl"

SECURE_ARGS=(--auth-policy required --api-keys "$KEYS" --audit-log "$AUDIT"
  --rate-limit "ip=$SECURE_RATE" --rate-limit "session=$SECURE_RATE"
  --rate-limit "principal=$SECURE_RATE" --rate-limit "tool=$SECURE_RATE")
OFF_ARGS=(--auth-policy public
  --rate-limit "ip=$OFF_RATE" --rate-limit "session=$OFF_RATE"
  --rate-limit "principal=$OFF_RATE" --rate-limit "tool=$OFF_RATE")

start_server secure "${SECURE_ARGS[@]}"
start_server off "${OFF_ARGS[@]}"

# The secure server must really refuse a call without the key.
# shellcheck disable=SC2154 # URL_secure and URL_off are set by start_server (printf -v).
code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X POST "$URL_secure" \
  -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
  -H 'MCP-Protocol-Version: 2025-11-25' --data-binary "$CALL_BODY")"
[[ "$code" == 401 ]] || { echo "load.sh: secure server answered $code without a credential (expected 401)" >&2; exit 1; }

make_sessions secure "$API_KEY"
make_sessions off ""

for r in $(seq "$ROUNDS"); do
  # Alternate the order (A B, B A, ...) so that a drift in the machine's background load does
  # not always favour the same configuration.
  order="secure off"; ((r % 2 == 0)) && order="off secure"
  for name in $order; do
    key=""; [[ "$name" == secure ]] && key="$API_KEY"
    if ((WARMUP > 0)); then
      run_wrk "$name" "$key" "$WARMUP" "$WORK/warm.json" "$WORK/warm.txt"
    fi
    log "round $r: $name, ${DURATION}s"
    run_wrk "$name" "$key" "$DURATION" "$WORK/$name.$r.json" "$WORK/$name.$r.txt"
    sed -n 's/^/    /; /Requests\/sec\|Non-2xx\|Latency \|  50%\|  99%/p' "$WORK/$name.$r.txt" >&2
  done
done
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"
AUDIT_LINES="$(wc -l <"$AUDIT" | tr -d ' ')"
AUDIT_CHECK="$("$BIN" audit verify "$AUDIT" 2>&1 | tail -n1 || true)"
AUDIT_CHECK="${AUDIT_CHECK#*secure-audit.jsonl: }"

# Keep the raw wrk outputs of the last run next to the summary.
for f in "$WORK"/secure.*.txt "$WORK"/off.*.txt; do cp "$f" "$OUT_DIR/wrk-$(basename "$f")"; done

export ROUNDS DURATION THREADS CONNECTIONS WARMUP WRK_VERSION LOAD_BEFORE LOAD_AFTER SECURE_RATE OFF_RATE \
  AUDIT_LINES AUDIT_CHECK
python3 - "$WORK" "$OUT_DIR" <<'PY'
import json, os, statistics, sys
E = os.environ
work, out = sys.argv[1], sys.argv[2]
rounds = int(E["ROUNDS"])
def load(name):
    return [json.load(open(os.path.join(work, f"{name}.{r}.json"))) for r in range(1, rounds + 1)]
runs = {"secure": load("secure"), "off": load("off")}
ratios = [s["requests_per_s"] / o["requests_per_s"] for s, o in zip(runs["secure"], runs["off"])]
ratio = statistics.median(ratios)
def headline(name):
    rs = runs[name]
    pick = lambda k: statistics.median(x[k] for x in rs)
    lat = lambda k: statistics.median(x["latency_us"][k] for x in rs)
    return {
        "requests_per_s": round(pick("requests_per_s"), 1),
        "latency_us": {k: lat(k) for k in ("p50", "p90", "p99", "p99_9")},
        "requests": sum(x["requests"] for x in rs),
        "non_2xx": sum(x["errors"]["non_2xx_3xx"] for x in rs),
        "socket_errors": sum(x["errors"][k] for x in rs for k in ("connect", "read", "write", "timeout")),
        "rounds": rs,
    }
summary = {
    "benchmark": "load/tools_call/query_products",
    "tool": E["WRK_VERSION"],
    "command": "benches/load.sh " + E["DURATION"],
    "load": {"threads": int(E["THREADS"]), "connections": int(E["CONNECTIONS"]), "seconds_per_run": int(E["DURATION"]),
             "warmup_s": int(E["WARMUP"]), "rounds": rounds, "sessions_per_server": int(E["CONNECTIONS"])},
    "machine": {"cpus": os.cpu_count(), "cpu_model": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown"),
                "load_average_before": E["LOAD_BEFORE"], "load_average_after": E["LOAD_AFTER"]},
    "secure": {"config": "auth required (API key, Bearer), rate limits " + E["SECURE_RATE"] + " per layer (ip, session, principal, tool), schema validation, sanitization, audit log to file",
               **headline("secure"), "audit_lines": int(E["AUDIT_LINES"]), "audit_verify": E["AUDIT_CHECK"]},
    "off": {"config": "auth public (no credential checked), rate limits " + E["OFF_RATE"] + " per layer (the limiter runs, never trips), no audit file; schema validation, sanitization, Host/Origin/version checks and body/JSON limits stay on (no flag turns them off)",
            **headline("off")},
    "ratio_secure_over_off": round(ratio, 3),
    "ratio_definition": "median over rounds of (secure requests/s / off requests/s) of the same round",
    "ratio_of_median_throughputs": round(headline("secure")["requests_per_s"] / headline("off")["requests_per_s"], 3),
    "ratios_per_round": [round(x, 3) for x in ratios],
    "target": ">= 0.70",
    "target_met": ratio >= 0.70,
}
json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=2)
s, o = summary["secure"], summary["off"]
ms = lambda us: f"{us / 1000:.2f} ms"
warning = ""
if s["non_2xx"] or o["non_2xx"] or s["socket_errors"] or o["socket_errors"]:
    warning = "**Warning: some responses were not 2xx or failed; the figures include them.**\n\n"
audited = "every measured call audited" if s["audit_lines"] >= s["requests"] else "FEWER audit lines than calls"
md = f"""# Load: reference server, secure vs. security off

`{summary['command']}` — wrk ({summary['tool']}) `-t{E["THREADS"]} -c{E["CONNECTIONS"]} -d{E["DURATION"]}s --latency`, {rounds} round(s), {E["WARMUP"]} s warm-up per run,
`tools/call query_products {{"category":"tools","limit":3}}` over {E["CONNECTIONS"]} initialized sessions per server, loopback only.
Machine: {summary['machine']['cpus']} CPUs ({summary['machine']['cpu_model']}); load average before {summary['machine']['load_average_before']}, after {summary['machine']['load_average_after']} (shared, busy machine).

| configuration | requests/s | p50 | p99 | p99.9 | requests | non-2xx | socket errors |
|---|---:|---:|---:|---:|---:|---:|---:|
| secure (A) | {s['requests_per_s']:.0f} | {ms(s['latency_us']['p50'])} | {ms(s['latency_us']['p99'])} | {ms(s['latency_us']['p99_9'])} | {s['requests']} | {s['non_2xx']} | {s['socket_errors']} |
| security off (B) | {o['requests_per_s']:.0f} | {ms(o['latency_us']['p50'])} | {ms(o['latency_us']['p99'])} | {ms(o['latency_us']['p99_9'])} | {o['requests']} | {o['non_2xx']} | {o['socket_errors']} |

{warning}**Secure / off throughput: {summary['ratio_secure_over_off']:.3f}** (median of the per-round ratios {', '.join(f'{x:.3f}' for x in summary['ratios_per_round'])}; ratio of the median throughputs above: {summary['ratio_of_median_throughputs']:.3f}); target ≥ 0.70: {'met' if summary['target_met'] else 'NOT met'}.
Requests/s and latencies are medians over the rounds; requests, non-2xx and socket errors are totals.

- (A) secure: {s['config']}. Audit log: {s['audit_lines']} lines for {s['requests']} measured calls plus warm-ups and set-up ({audited}); `audit verify`: {s['audit_verify']}.
- (B) security off: {o['config']}.
"""
open(os.path.join(out, "summary.md"), "w").write(md)
print(md)
PY
rm -rf "$WORK"
