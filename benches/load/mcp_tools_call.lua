-- wrk script for benches/load.sh: drives MCP `tools/call query_products` over pre-initialized
-- sessions and writes the run's figures as JSON.
--
-- Environment (set by load.sh):
--   MCPROOF_LOAD_SESSIONS  file with one Mcp-Session-Id per line (created with curl beforehand)
--   MCPROOF_LOAD_KEY       optional API key, sent as `Authorization: Bearer <key>`
--   MCPROOF_LOAD_OUT       where `done` writes the JSON summary
--
-- Every request is the same small, valid call; the session id rotates so that each session
-- carries an equal share of the load. Requests are formatted once per thread in `init`, so the
-- load generator spends as little CPU as possible per request (it shares the machine with the
-- server).

local BODY = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"query_products",'
  .. '"arguments":{"category":"tools","limit":3}}}'

local threads = {}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("tid", thread_count)
  table.insert(threads, thread)
end

local requests_fmt = {}
local n = 0
local i = 0

local function read_lines(path)
  local lines = {}
  local f = assert(io.open(path, "r"), "cannot open " .. tostring(path))
  for line in f:lines() do
    if #line > 0 then
      table.insert(lines, line)
    end
  end
  f:close()
  return lines
end

function init(args)
  local sessions = read_lines(assert(os.getenv("MCPROOF_LOAD_SESSIONS"), "MCPROOF_LOAD_SESSIONS unset"))
  local key = os.getenv("MCPROOF_LOAD_KEY")
  for _, sid in ipairs(sessions) do
    local headers = {
      ["Content-Type"] = "application/json",
      ["Accept"] = "application/json, text/event-stream",
      ["MCP-Protocol-Version"] = "2025-11-25",
      ["Mcp-Session-Id"] = sid,
    }
    if key and #key > 0 then
      headers["Authorization"] = "Bearer " .. key
    end
    table.insert(requests_fmt, wrk.format("POST", "/mcp", headers, BODY))
  end
  n = #requests_fmt
  assert(n > 0, "no sessions")
  -- Threads start at different sessions.
  i = ((tid or 1) - 1) * math.floor(n / 2)
end

function request()
  i = i % n + 1
  return requests_fmt[i]
end

function done(summary, latency, requests)
  local out = os.getenv("MCPROOF_LOAD_OUT")
  if not out then
    return
  end
  local e = summary.errors
  local secs = summary.duration / 1e6
  local f = assert(io.open(out, "w"))
  f:write(string.format(
    '{"requests":%d,"duration_s":%.3f,"bytes":%d,"requests_per_s":%.1f,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"non_2xx_3xx":%d,"timeout":%d},'
      .. '"latency_us":{"mean":%.1f,"stdev":%.1f,"p50":%d,"p90":%d,"p99":%d,"p99_9":%d,"max":%d}}\n',
    summary.requests, secs, summary.bytes, summary.requests / secs,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max))
  f:close()
end
