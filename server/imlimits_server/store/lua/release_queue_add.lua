-- Queues an app for the release workers under a fresh, ever-growing number, due at once.
-- KEYS: queue, sequence, due. ARGV: app_id. Returns the number.
local queued = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], ARGV[1], queued)
redis.call('ZADD', KEYS[3], 0, ARGV[1])
return queued
