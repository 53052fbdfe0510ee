-- LeaveGroup. KEYS: lim, uc, g, m, cnt, mh. ARGV: users... Returns {code, released}.
-- A held membership is released like any other, and its hold no longer covers it (docs/holds.md).
local _, refusal = app_limits(KEYS[1])
if refusal then return refusal end
if redis.call('EXISTS', KEYS[3]) == 0 then return {10010} end
local leaving = {}
for _, user in ipairs(ARGV) do
  -- Leaving twice releases once.
  if redis.call('SREM', KEYS[4], user) == 1 then leaving[#leaving + 1] = user end
end
if #leaving > 0 then
  local held = redis.call('HDEL', KEYS[6], unpack(leaving))
  if held > 0 then redis.call('HINCRBY', KEYS[5], 'hmembers', -held) end
end
release_users(KEYS[2], leaving)
return {0, #leaving}
