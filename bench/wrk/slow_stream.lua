-- POST /v1/chat/completions with stream=true; the fake upstream sleeps 300 ms before each
-- of its 12 content chunks, so each stream stays open ≈ 4 s. Used to measure gateway RSS
-- with ~1,000 streams in flight.
package.path = (os.getenv("BENCH_LUA_DIR") or ".") .. "/?.lua;" .. package.path
local c = require("common")
local headers = c.headers("application/json")
local n = 0

request = function()
  n = n + 1
  local body = '{"model":"gpt-4o","stream":true,"messages":[{"role":"user",' ..
    '"content":"[fake:slow=300] [fake:words=10]"}],"user":"stream_user_' .. (n % c.users) .. '"}'
  return wrk.format("POST", "/v1/chat/completions", headers, body)
end

done = c.done
