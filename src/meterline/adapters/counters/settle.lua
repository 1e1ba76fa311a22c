-- ARGV: 4 reservation id ('' = none), 5 tokens, 6 cost nanos, 7 `at` in the current
-- day '1'/'0', 8 `at` in the current month, 9 `at` ms, 10 `at` inside the rolling
-- minute '1'/'0', 11 minute TTL, 12 requests (events summed into this call; 1 with a
-- reservation id). Absent windows are left absent. Returns 1 if settled.
expire_due()
local settled = ARGV[4] ~= '' and drop(ARGV[4], false)
local count = settled and '0' or ARGV[12]
local function add(key)
  redis.call('HINCRBY', key, 'requests', count)
  redis.call('HINCRBY', key, 'tokens', ARGV[5])
  redis.call('HINCRBY', key, 'cost', ARGV[6])
end
-- A window this event belongs to is absent while a seeder is at work (it created the
-- version key): it may have read the ledger before this event committed, so bump the
-- version and its seed is refused and redone. No seeder, no key: nothing is created.
local day = ARGV[7] == '1' and redis.call('EXISTS', DAY) == 1
local month = ARGV[8] == '1' and redis.call('EXISTS', MONTH) == 1
if ((ARGV[7] == '1' and not day) or (ARGV[8] == '1' and not month))
    and redis.call('EXISTS', GEN) == 1 then
  redis.call('INCR', GEN)
end
if day then add(DAY) end
if month then add(MONTH) end
if not settled and day and ARGV[10] == '1' then
  for _ = 1, tonumber(count) do count_minute(ARGV[9], ARGV[11]) end
end
if settled then return 1 end
return 0
