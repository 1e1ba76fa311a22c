-- ARGV: 4 seed day '1'/'0', 5 seed month, 6..8 day requests/tokens/cost,
-- 9..11 month requests/tokens/cost, 12 day TTL ms, 13 month TTL ms.
-- 14 expected seed version ('' = any). Only absent hashes are written, so racing
-- seeders cannot double a window; a settle since the version was read refuses the seed.
-- A reservation falling due now drops the windows (common.lua), and usage settled into
-- them since the ledger was read is gone with them: that seed is refused too.
if ARGV[14] ~= '' and (redis.call('GET', GEN) or '0') ~= ARGV[14] then return 0 end
if expire_due() and ARGV[14] ~= '' then return 0 end
-- The ledger has a call once it is recorded; a live reservation's request was counted at
-- admission, so it is added on top (its settle counts no request).
local held_day, held_month = live_requests()
local function put(key, flag, r, t, c, ttl, held)
  if flag == '1' and redis.call('EXISTS', key) == 0 then
    redis.call('HSET', key, 'requests', r, 'tokens', t, 'cost', c)
    if held > 0 then redis.call('HINCRBY', key, 'requests', held) end
    redis.call('PEXPIRE', key, ttl)
    redis.call('SADD', IDX, key)
  end
end
put(DAY, ARGV[4], ARGV[6], ARGV[7], ARGV[8], ARGV[12], held_day)
put(MONTH, ARGV[5], ARGV[9], ARGV[10], ARGV[11], ARGV[13], held_month)
-- The index names the windows `forget` deletes; older windows expire on their own.
for _, key in ipairs(redis.call('SMEMBERS', IDX)) do
  if key ~= DAY and key ~= MONTH then redis.call('SREM', IDX, key) end
end
if redis.call('EXISTS', IDX) == 1 then redis.call('PEXPIRE', IDX, ARGV[13]) end
return 1
