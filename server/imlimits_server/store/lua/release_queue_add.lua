-- Queues an app for the release workers under a fresh, ever-growing number.
-- KEYS: queue, sequence. ARGV: app_id. Returns the number.
local queued = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], ARGV[1], queued)
return queued
