-- Recounts one user's groups from the membership sets, atomically, so a
-- concurrent join or leave cannot slip between the count and a repair.
-- KEYS: uc, gi, drain. ARGV: user, member-set key prefix ("{im:APP}:m:"), repair ('1'/'0').
-- Reads member sets named by the index (same hash tag, same slot): O(groups).
-- Returns {recorded, actual}.
local user, prefix = ARGV[1], ARGV[2]
local actual = 0
for _, group_id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  actual = actual + redis.call('SISMEMBER', prefix .. group_id, user)
end
for _, tombstone in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  actual = actual + redis.call('SISMEMBER', tombstone, user)
end
local recorded = tonumber(redis.call('HGET', KEYS[1], user) or '0')
if ARGV[3] == '1' and recorded ~= actual then
  if actual == 0 then redis.call('HDEL', KEYS[1], user) else redis.call('HSET', KEYS[1], user, actual) end
end
return {recorded, actual}
