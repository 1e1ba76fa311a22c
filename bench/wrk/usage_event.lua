-- POST /api/v1/billing/usage-events, one event per request, every event_id distinct
-- (BENCH_RUN_ID and the start time prefix the ids, so the warm-up, the measured run and
-- reruns against the same database never replay each other's ids).
package.path = (os.getenv("BENCH_LUA_DIR") or ".") .. "/?.lua;" .. package.path
local c = require("common")
local headers = c.headers("application/json")
local run = (os.getenv("BENCH_RUN_ID") or "run") .. "-" .. tostring(os.time())
local n = 0

request = function()
  n = n + 1
  local body = '{"end_user_id":"' .. c.prefix .. (n % c.users) .. '","model":"gpt-4o",' ..
    '"prompt_tokens":812,"completion_tokens":95,"event_id":"single-' .. run .. '-' .. n .. '"}'
  return wrk.format("POST", "/api/v1/billing/usage-events", headers, body)
end

done = c.done
