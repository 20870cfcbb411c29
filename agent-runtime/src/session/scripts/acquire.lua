-- Takes the session's lease and loads it, in one round trip.
-- KEYS: 1 lock, 2 state, 3 messages, 4 checkpoint.  ARGV: 1 lock value, 2 lease ms,
-- 3 the value of this replica's own abandoned lease on the session ('' if none): an earlier
-- acquire whose answer never came, which counts as free; 4 'resume' to continue an
-- interrupted invocation's checkpoint, 'decide' to continue a turn that waits for approval,
-- else '' (a new invocation: any checkpoint is dropped); 5 now (Unix ms).
-- A turn waiting for approval ('pending') refuses a new invocation and a resume with
-- {'pending', expires at}; once expired it is dropped (its checkpoint too) by any acquire,
-- which a new invocation then continues past and the others answer {'expired'}. 'decide'
-- without one answers {'no_pending'}; with one it takes the lease and clears 'pending' (the
-- checkpoint stays, as for a resume).
-- Answers {'busy', holder, pttl}, {'nothing'} (resume without a checkpoint; no lease taken)
-- or {'ok', state (HGETALL), messages, checkpoint messages}.
local lease = tonumber(ARGV[2])
local now = tonumber(ARGV[5])
if ARGV[1] == nil or ARGV[1] == '' or lease == nil or lease <= 0 or ARGV[4] == nil
   or now == nil then
  return redis.error_reply('ERR agentry acquire: bad arguments')
end
local resume = ARGV[4] == 'resume'
local decide = ARGV[4] == 'decide'
-- ---- no write above this line: Redis keeps the writes of a script that errors later ----
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[3] then return {'busy', holder, redis.call('PTTL', KEYS[1])} end
local expires = redis.call('HGET', KEYS[2], 'pendingExpiresAt')
if expires then
  if now >= (tonumber(expires) or 0) then
    redis.call('HDEL', KEYS[2], 'pending', 'pendingExpiresAt', 'checkpoint')
    redis.call('DEL', KEYS[4])
    if resume or decide then return {'expired'} end
  elseif not decide then
    return {'pending', expires}
  end
elseif decide then
  return {'no_pending'}
end
if resume and not redis.call('HGET', KEYS[2], 'checkpoint') then return {'nothing'} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', lease)
if decide then redis.call('HDEL', KEYS[2], 'pending', 'pendingExpiresAt') end
if not resume and not decide then
  redis.call('HDEL', KEYS[2], 'checkpoint')
  redis.call('DEL', KEYS[4])
end
return {'ok', redis.call('HGETALL', KEYS[2]), redis.call('LRANGE', KEYS[3], 0, -1),
        redis.call('LRANGE', KEYS[4], 0, -1)}
