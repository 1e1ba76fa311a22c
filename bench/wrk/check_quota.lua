-- GET /api/v1/billing/check-quota for a different end user per request.
package.path = (os.getenv("BENCH_LUA_DIR") or ".") .. "/?.lua;" .. package.path
local c = require("common")
local headers = c.headers(nil)
local n = 0

request = function()
  n = n + 1
  return wrk.format("GET", "/api/v1/billing/check-quota?model=gpt-4o&end_user_id=" .. c.prefix ..
    (n % c.users), headers)
end

done = c.done
