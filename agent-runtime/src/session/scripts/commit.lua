-- Appends an invocation's new messages and releases its lease, all or nothing.
-- KEYS: 1 lock, 2 state, 3 messages, 4 checkpoint.
-- ARGV: 1 lock value, 2 expected version, 3 invocation id, 4 ttl ms, 5 messages to drop from
--       the front, 6 summary ('' keeps it), 7 meta JSON, 8 pending JSON ('' clears it),
--       9.. new messages (one Converse message JSON each).
-- Answers 'ok', 'already' (this invocation's commit landed before: a retry), 'lock_lost' or
-- 'conflict' (the version moved since the load).
local expected = tonumber(ARGV[2])
local ttl = tonumber(ARGV[4])
local drop = tonumber(ARGV[5])
if expected == nil or ttl == nil or ttl <= 0 or drop == nil or drop < 0
   or ARGV[3] == nil or ARGV[3] == '' or ARGV[7] == nil or ARGV[8] == nil then
  return redis.error_reply('ERR agentry commit: bad arguments')
end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  if redis.call('HGET', KEYS[2], 'lastInvocation') == ARGV[3] then return 'already' end
  return 'lock_lost'
end
local v = tonumber(redis.call('HGET', KEYS[2], 'v') or '0')
if v == nil or v ~= expected then return 'conflict' end
-- ---- no write above this line: Redis keeps the writes of a script that errors later ----
if drop > 0 then redis.call('LTRIM', KEYS[3], drop, -1) end
-- unpack in chunks: Lua's C stack limits how many values one call takes.
for i = 9, #ARGV, 500 do
  redis.call('RPUSH', KEYS[3], unpack(ARGV, i, math.min(i + 499, #ARGV)))
end
redis.call('HSET', KEYS[2], 'v', v + 1, 'lastInvocation', ARGV[3], 'meta', ARGV[7], 'schema', 1)
if ARGV[6] ~= '' then redis.call('HSET', KEYS[2], 'summary', ARGV[6]) end
if ARGV[8] ~= '' then redis.call('HSET', KEYS[2], 'pending', ARGV[8])
else redis.call('HDEL', KEYS[2], 'pending') end
redis.call('HDEL', KEYS[2], 'checkpoint')
redis.call('DEL', KEYS[4])
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('PEXPIRE', KEYS[3], ttl)
redis.call('DEL', KEYS[1])
return 'ok'
