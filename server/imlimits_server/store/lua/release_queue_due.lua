-- The queued apps a worker should look at now, by Redis's clock, at most `limit`, earliest first.
-- An app on the due list but no longer queued is dropped from it, and a queued app missing from the
-- due list (queued by a server older than the due list) is put on it, due at once.
-- KEYS: queue, due. ARGV: limit. Returns {app_id, queued, ...}.
local now = now_ms()
if redis.call('HLEN', KEYS[1]) > redis.call('ZCARD', KEYS[2]) then
  for _, app in ipairs(redis.call('HKEYS', KEYS[1])) do redis.call('ZADD', KEYS[2], 'NX', 0, app) end
end
local found = {}
for _, app in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))) do
  local queued = redis.call('HGET', KEYS[1], app)
  if queued then
    found[#found + 1] = app
    found[#found + 1] = queued
  else
    redis.call('ZREM', KEYS[2], app)
  end
end
return found
