-- wrk script: POSTs the GraphQL document in $QUERY (JSON-escaped) with an optional bearer token,
-- and counts responses that are not 200 or that carry GraphQL errors.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
wrk.body = '{"query":"' .. os.getenv("QUERY") .. '"}'

local failed = 0
function response(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then
    failed = failed + 1
  end
end

function done(summary, latency, requests)
  io.write(string.format(
    "requests/s %.0f | p50 %.2f ms | p99 %.2f ms | failed %d of %d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    failed, summary.requests))
end
