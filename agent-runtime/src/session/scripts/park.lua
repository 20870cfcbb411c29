-- Stops a turn for approval: keeps its checkpoint (the model reply whose calls wait), records
-- the pending approval and gives the lease back, checking the lease token first.
-- KEYS: 1 lock, 2 state, 3 messages, 4 checkpoint.
-- ARGV: 1 lock value, 2 pending JSON, 3 expires at (Unix ms), 4 ttl ms.
-- Answers 'ok' or 'lock_lost' (nothing is touched then).
local expires = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
if ARGV[2] == nil or ARGV[2] == '' or expires == nil or ttl == nil or ttl <= 0 then
  return redis.error_reply('ERR agentry park: bad arguments')
end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'lock_lost' end
if not redis.call('HGET', KEYS[2], 'checkpoint') then return 'lock_lost' end
-- ---- no write above this line: Redis keeps the writes of a script that errors later ----
redis.call('HSET', KEYS[2], 'pending', ARGV[2], 'pendingExpiresAt', ARGV[3])
-- Waiting is activity: the session lives ttl from the stop, as from a commit.
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('PEXPIRE', KEYS[3], ttl)
redis.call('PEXPIRE', KEYS[4], ttl)
redis.call('DEL', KEYS[1])
return 'ok'
