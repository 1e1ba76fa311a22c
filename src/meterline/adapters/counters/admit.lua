-- ARGV: 4 minute cut (now-60s, ms), 5 day wait, 6 month wait,
-- 7..13 limits: rpm, daily/monthly tokens, daily/monthly requests, daily/monthly cost
-- (nanos, ceiling), '' = none; 14 alert_only '1'/'0'; 15 reservation id ('' = none),
-- 16 tokens, 17 cost nanos, 18 expires ms ('-1' = never), 19 minute TTL, 20 res TTL.
-- Returns {status, state...(10), code, wait, code, wait...}; status 1 admitted,
-- 0 denied, -1 seed needed, -2 reservation id already held.
expire_due()
if not seeded() then return {-1} end
local rid = ARGV[15]
if rid ~= '' and redis.call('HEXISTS', RES, 'r:' .. rid) == 1 then return {-2} end
local s = state(ARGV[4])
local now = tonumber(NOW)
local held_t, held_c = tonumber(s[7]), tonumber(s[8])

-- Mirrors meterline.domain.limits.exceeded_limits: same order, same `used >= cap`.
local out = {}
local function check(code, cap, used, wait)
  if cap ~= '' and used >= tonumber(cap) then
    out[#out + 1] = code
    out[#out + 1] = wait
  end
end
local day_wait, month_wait = tonumber(ARGV[5]), tonumber(ARGV[6])
local minute_wait = 60
if s[10] ~= '' then minute_wait = math.ceil((tonumber(s[10]) + 60000 - now) / 1000) end
if minute_wait < 1 then minute_wait = 1 end
check(1, ARGV[7], s[9], minute_wait)
check(2, ARGV[8], tonumber(s[2]) + held_t, day_wait)
check(3, ARGV[9], tonumber(s[5]) + held_t, month_wait)
check(4, ARGV[10], tonumber(s[1]), day_wait)
check(5, ARGV[11], tonumber(s[4]), month_wait)
check(6, ARGV[12], tonumber(s[3]) + held_c, day_wait)
check(7, ARGV[13], tonumber(s[6]) + held_c, month_wait)

local status = 0
if #out == 0 or ARGV[14] == '1' then
  status = 1
  redis.call('HINCRBY', DAY, 'requests', 1)
  redis.call('HINCRBY', MONTH, 'requests', 1)
  count_minute(NOW, ARGV[19])
  if rid ~= '' then
    local v = ARGV[16] .. '|' .. ARGV[17] .. '|' .. ARGV[18] .. '|' .. CUR_DAY .. '|' .. CUR_MONTH
    redis.call('HSET', RES, 'r:' .. rid, v)
    redis.call('HINCRBY', RES, 'held_tokens', ARGV[16])
    redis.call('HINCRBY', RES, 'held_cost', ARGV[17])
    if ARGV[18] ~= '-1' then redis.call('ZADD', REXP, ARGV[18], rid) end
    for _, key in ipairs({RES, REXP}) do
      if redis.call('PTTL', key) < tonumber(ARGV[20]) then
        redis.call('PEXPIRE', key, ARGV[20])
      end
    end
  end
  s = state(ARGV[4])
end
local reply = {status}
for _, v in ipairs(s) do reply[#reply + 1] = v end
for _, v in ipairs(out) do reply[#reply + 1] = v end
return reply
