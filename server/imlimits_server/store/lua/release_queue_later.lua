-- Makes a queued app due again at `due` (Redis ms), when all it has left is holds that end then, if it
-- was not queued again since the worker read `queued` (a newer queueing keeps it due at once).
-- KEYS: queue, due. ARGV: app_id, queued, due. Returns 1 if rescheduled.
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
