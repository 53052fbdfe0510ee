-- LeaveGroup. KEYS: lim, uc, g, m. ARGV: users... Returns {code, released}.
local _, refusal = app_limits(KEYS[1])
if refusal then return refusal end
if redis.call('EXISTS', KEYS[3]) == 0 then return {10010} end
local leaving = {}
for _, user in ipairs(ARGV) do
  -- Leaving twice releases once.
  if redis.call('SREM', KEYS[4], user) == 1 then leaving[#leaving + 1] = user end
end
release_users(KEYS[2], leaving)
return {0, #leaving}
