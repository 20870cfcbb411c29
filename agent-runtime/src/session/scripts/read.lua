-- Reads a session without taking its lease (GET /v1/sessions/{id}); writes nothing.
-- KEYS: 1 lock, 2 state, 3 messages.
-- Answers {state (HGETALL), messages, state pttl, lock holder or false}.
return {redis.call('HGETALL', KEYS[2]), redis.call('LRANGE', KEYS[3], 0, -1),
        redis.call('PTTL', KEYS[2]), redis.call('GET', KEYS[1])}
