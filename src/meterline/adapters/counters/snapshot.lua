-- ARGV: 4 minute cut. Returns {1, state...} or {-1} when seeding is needed.
expire_due()
if not seeded() then return {-1} end
local reply = {1}
for _, v in ipairs(state(ARGV[4])) do reply[#reply + 1] = v end
return reply
