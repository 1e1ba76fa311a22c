-- Shared prelude of every counters script (prepended by redis.py).
-- KEYS: 1 day hash, 2 month hash, 3 minute zset, 4 reservations hash,
--       5 reservation expiry zset, 6 index set of window keys.
-- ARGV: 1 now (epoch ms), 2 current day key, 3 current month key; the rest per script.
-- Numbers that are stored go through Redis as strings (HINCRBY is exact int64);
-- Lua numbers (doubles) are used only to compare, exact below 2^53.
local DAY, MONTH, MINUTE, RES, REXP, IDX = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
-- 7: seed version, bumped by a settle that finds the windows absent (see seed.lua).
local GEN = KEYS[7]
local NOW, CUR_DAY, CUR_MONTH = ARGV[1], ARGV[2], ARGV[3]

local function neg(s)
  if s == '0' then return '0' end
  if string.sub(s, 1, 1) == '-' then return string.sub(s, 2) end
  return '-' .. s
end

-- One request fewer in a window that still exists, never below zero.
local function uncount(key)
  local n = redis.call('HGET', key, 'requests')
  if n and tonumber(n) > 0 then redis.call('HINCRBY', key, 'requests', -1) end
end

-- Drop reservation `id`: unhold its tokens/cost and, for a release, uncount its
-- request in its day/month when those are still the current windows.
local function drop(id, release)
  redis.call('ZREM', REXP, id)
  local v = redis.call('HGET', RES, 'r:' .. id)
  if not v then return false end
  local t, c, _, d, m = string.match(v, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
  redis.call('HDEL', RES, 'r:' .. id)
  redis.call('HINCRBY', RES, 'held_tokens', neg(t))
  redis.call('HINCRBY', RES, 'held_cost', neg(c))
  if release then
    if d == CUR_DAY then uncount(DAY) end
    if m == CUR_MONTH then uncount(MONTH) end
  end
  return true
end

-- Lazy expiry: every call for a user first drops its reservations that are due. Whether
-- a due reservation's call was recorded only the ledger knows: its process may have died
-- after the ledger commit but before the settle, or before the commit (or a direct-API
-- client never reported). So its hold is dropped without uncounting anything and the
-- current windows go with it, to be reseeded from the ledger. Returns true if it did.
local function expire_due()
  local due = redis.call('ZRANGEBYSCORE', REXP, '-inf', NOW)
  if #due == 0 then return false end
  for _, id in ipairs(due) do drop(id, false) end
  redis.call('DEL', DAY, MONTH)
  return true
end

-- Live reservations admitted in the current day and month: admission counted their
-- requests, which the ledger holds only once they are recorded (see seed.lua).
local function live_requests()
  local day, month = 0, 0
  local fields = redis.call('HGETALL', RES)
  for i = 1, #fields, 2 do
    if string.sub(fields[i], 1, 2) == 'r:' then
      local d, m = string.match(fields[i + 1], '|([^|]*)|([^|]*)$')
      if d == CUR_DAY then day = day + 1 end
      if m == CUR_MONTH then month = month + 1 end
    end
  end
  return day, month
end

local function seeded()
  return redis.call('EXISTS', DAY) == 1 and redis.call('EXISTS', MONTH) == 1
end

-- Raw figures for the snapshot; Python adds held amounts exactly.
local function state(minute_cut)
  redis.call('ZREMRANGEBYSCORE', MINUTE, '-inf', minute_cut)
  local d = redis.call('HMGET', DAY, 'requests', 'tokens', 'cost')
  local m = redis.call('HMGET', MONTH, 'requests', 'tokens', 'cost')
  local h = redis.call('HMGET', RES, 'held_tokens', 'held_cost')
  local oldest = redis.call('ZRANGE', MINUTE, 0, 0, 'WITHSCORES')
  return {
    d[1] or '0', d[2] or '0', d[3] or '0',
    m[1] or '0', m[2] or '0', m[3] or '0',
    h[1] or '0', h[2] or '0',
    redis.call('ZCARD', MINUTE), oldest[2] or '',
  }
end

-- Count one request in the rolling minute at `at_ms` (member unique per admission). The
-- sequence lives in the reservations hash, which outlives the minute: the windows can be
-- dropped and reseeded (an expired reservation) while the minute keeps its members.
local function count_minute(at_ms, ttl)
  local seq = redis.call('HINCRBY', RES, 'seq', 1)
  if redis.call('PTTL', RES) < tonumber(ttl) then redis.call('PEXPIRE', RES, ttl) end
  redis.call('ZADD', MINUTE, at_ms, CUR_DAY .. ':' .. seq)
  redis.call('PEXPIRE', MINUTE, ttl)
end
