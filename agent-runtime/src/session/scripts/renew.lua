-- Extends the lease of its holder.  KEYS: 1 lock.  ARGV: 1 lock value, 2 lease ms.
-- Answers 1, or 0 when the lease is no longer this holder's.
local lease = tonumber(ARGV[2])
if lease == nil or lease <= 0 then return redis.error_reply('ERR agentry renew: bad arguments') end
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], lease) end
return 0
