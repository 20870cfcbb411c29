-- Takes the session's lease and loads it, in one round trip.
-- KEYS: 1 lock, 2 state, 3 messages, 4 checkpoint.  ARGV: 1 lock value, 2 lease ms,
-- 3 the value of this replica's own abandoned lease on the session ('' if none): an earlier
-- acquire whose answer never came, which counts as free; 4 'resume' to continue an
-- interrupted invocation's checkpoint, else '' (a new invocation: any checkpoint is dropped).
-- Answers {'busy', holder, pttl}, {'nothing'} (resume without a checkpoint; no lease taken)
-- or {'ok', state (HGETALL), messages, checkpoint messages}.
local lease = tonumber(ARGV[2])
if ARGV[1] == nil or ARGV[1] == '' or lease == nil or lease <= 0 or ARGV[4] == nil then
  return redis.error_reply('ERR agentry acquire: bad arguments')
end
local resume = ARGV[4] == 'resume'
-- ---- no write above this line: Redis keeps the writes of a script that errors later ----
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[3] then return {'busy', holder, redis.call('PTTL', KEYS[1])} end
if resume and not redis.call('HGET', KEYS[2], 'checkpoint') then return {'nothing'} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', lease)
if not resume then
  redis.call('HDEL', KEYS[2], 'checkpoint')
  redis.call('DEL', KEYS[4])
end
return {'ok', redis.call('HGETALL', KEYS[2]), redis.call('LRANGE', KEYS[3], 0, -1),
        redis.call('LRANGE', KEYS[4], 0, -1)}
