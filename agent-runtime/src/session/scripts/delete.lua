-- Deletes a session unless an invocation holds it.  KEYS: 1 lock, 2 state, 3 messages,
-- 4 checkpoint.  Answers {'busy', holder, pttl}, {'not_found'} or {'ok'}.
local holder = redis.call('GET', KEYS[1])
if holder then return {'busy', holder, redis.call('PTTL', KEYS[1])} end
if redis.call('EXISTS', KEYS[2]) == 0 then return {'not_found'} end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
return {'ok'}
