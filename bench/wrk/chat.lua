-- POST /v1/chat/completions, non-stream, tiny body, a different `user` per request
-- (cycling over BENCH_USERS end users). BENCH_PATH overrides the path.
package.path = (os.getenv("BENCH_LUA_DIR") or ".") .. "/?.lua;" .. package.path
local c = require("common")
local path = os.getenv("BENCH_PATH") or "/v1/chat/completions"
local model = os.getenv("BENCH_MODEL") or "gpt-4o"
local headers = c.headers("application/json")
local n = 0

request = function()
  n = n + 1
  local body = '{"model":"' .. model .. '","messages":[{"role":"user","content":"Say hi"}],' ..
    '"user":"' .. c.prefix .. (n % c.users) .. '"}'
  return wrk.format("POST", path, headers, body)
end

done = c.done
