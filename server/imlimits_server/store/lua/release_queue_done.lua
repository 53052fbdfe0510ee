-- Takes an app off the release queue if it was not queued again since the
-- worker read `queued`. KEYS: queue, due. ARGV: app_id, queued. Returns 1 if removed.
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
