-- Shared by the wrk scripts: headers from the environment, a JSON summary at the end.
-- BENCH_AUTH: bearer token; BENCH_HEADERS: extra "name: value" pairs separated by "|";
-- BENCH_USERS: how many distinct end users to spread requests over (default 1000);
-- BENCH_USER_PREFIX: their ids are PREFIX0 .. PREFIX(N-1) (default "bench_user_").
local M = {}

function M.headers(content_type)
  local h = {}
  if content_type then h["Content-Type"] = content_type end
  local auth = os.getenv("BENCH_AUTH")
  if auth and auth ~= "" then h["Authorization"] = "Bearer " .. auth end
  local extra = os.getenv("BENCH_HEADERS") or ""
  for pair in string.gmatch(extra, "[^|]+") do
    local name, value = string.match(pair, "^%s*([^:]+):%s*(.-)%s*$")
    if name then h[name] = value end
  end
  return h
end

M.users = tonumber(os.getenv("BENCH_USERS") or "1000")
M.prefix = os.getenv("BENCH_USER_PREFIX") or "bench_user_"

function M.done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,' ..
    '"lat_mean_us":%.1f,"lat_max_us":%d,"p50_us":%d,"p75_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end

return M
