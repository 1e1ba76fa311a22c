-- ARGV: 4 reservation id. Returns 1 if a live reservation was dropped.
expire_due()
if drop(ARGV[4], true) then return 1 end
return 0
