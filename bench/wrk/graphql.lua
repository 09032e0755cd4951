-- wrk script: POSTs GraphQL requests and counts every response that is not a 200 or whose body
-- carries GraphQL `errors`.
--
-- BODY: the JSON request body, sent on every request, with TOKEN as bearer token if set. Or, for
-- a mix, BODIES: one request a line, "WEIGHT anonymous|signed BODY", one chosen at random per
-- request in proportion to its weight; `signed` requests carry TOKEN.
--
-- wrk runs one Lua state per thread, so each thread counts its own errors; `done` adds them up
-- and prints one JSON line for bench/run.

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("TOKEN") or ""
if token ~= "" and not os.getenv("BODIES") then
  wrk.headers["Authorization"] = "Bearer " .. token
end

local requests = {}
local total_weight = 0
local bodies = os.getenv("BODIES")
if bodies and bodies ~= "" then
  for line in bodies:gmatch("[^\n]+") do
    local weight, who, body = line:match("^(%d+) (%a+) (.*)$")
    local headers = { ["Content-Type"] = "application/json" }
    if who == "signed" then
      headers["Authorization"] = "Bearer " .. token
    end
    total_weight = total_weight + tonumber(weight)
    table.insert(requests, { limit = total_weight, raw = wrk.format("POST", nil, headers, body) })
  end
else
  wrk.body = os.getenv("BODY")
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
end

non_200 = 0
graphql_errors = 0

if #requests > 0 then
  function request()
    local draw = math.random(total_weight)
    for _, candidate in ipairs(requests) do
      if draw <= candidate.limit then
        return candidate.raw
      end
    end
    return requests[#requests].raw
  end
end

function response(status, headers, body)
  if status ~= 200 then
    non_200 = non_200 + 1
  elseif string.find(body, '"errors"', 1, true) then
    graphql_errors = graphql_errors + 1
  end
end

function done(summary, latency, requests)
  local bad_status, bad_body = 0, 0
  for _, thread in ipairs(threads) do
    bad_status = bad_status + thread:get("non_200")
    bad_body = bad_body + thread:get("graphql_errors")
  end
  local errors = summary.errors
  io.write(string.format(
    '{"requests":%d,"seconds":%.3f,"rps":%.1f,"p50_ms":%.3f,"p99_ms":%.3f,"non_200":%d,' ..
    '"graphql_errors":%d,"socket_errors":%d}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, bad_status, bad_body,
    errors.connect + errors.read + errors.write + errors.timeout))
end
