-- Saves the running invocation's turn so far (resume after a crash): appends its newest
-- messages to the checkpoint list and writes the checkpoint header, checking the lease token,
-- the version and the list's length first.
-- KEYS: 1 lock, 2 state, 3 messages, 4 checkpoint.
-- ARGV: 1 lock value, 2 expected version, 3 header JSON, 4 ttl ms, 5 messages the list holds
--       already from this invocation (0: a new checkpoint, replacing any other), 6.. messages
--       to append (one Converse message JSON each).
-- Answers 'ok', 'lock_lost' or 'conflict' (the version or the list moved).
local expected = tonumber(ARGV[2])
local ttl = tonumber(ARGV[4])
local have = tonumber(ARGV[5])
if expected == nil or ttl == nil or ttl <= 0 or have == nil or have < 0
   or ARGV[3] == nil or ARGV[3] == '' then
  return redis.error_reply('ERR agentry checkpoint: bad arguments')
end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'lock_lost' end
local v = tonumber(redis.call('HGET', KEYS[2], 'v') or '0')
if v == nil or v ~= expected then return 'conflict' end
if have > 0 and redis.call('LLEN', KEYS[4]) ~= have then return 'conflict' end
-- ---- no write above this line: Redis keeps the writes of a script that errors later ----
if have == 0 then redis.call('DEL', KEYS[4]) end
for i = 6, #ARGV, 500 do
  redis.call('RPUSH', KEYS[4], unpack(ARGV, i, math.min(i + 499, #ARGV)))
end
redis.call('HSET', KEYS[2], 'checkpoint', ARGV[3])
-- A new session's state hash is born here without a TTL; a committed one keeps its own.
if redis.call('PTTL', KEYS[2]) < 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
redis.call('PEXPIRE', KEYS[4], ttl)
return 'ok'
