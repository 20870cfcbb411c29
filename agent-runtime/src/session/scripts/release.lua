-- Gives the lease back without a commit (a failed invocation): its checkpoint goes too, so the
-- session is left as it was.  KEYS: 1 lock, 2 state, 3 messages, 4 checkpoint.
-- ARGV: 1 lock value.  Answers 1, or 0 when the lease was no longer this holder's (nothing
-- is touched then).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[2], 'checkpoint')
redis.call('DEL', KEYS[4], KEYS[1])
return 1
