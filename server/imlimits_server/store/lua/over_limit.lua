-- What exceeds the plan after an import, one bounded slice at a time.
-- KEYS: lim, cnt, gi, uc. ARGV: what ('groups' or 'users'), cursor, count,
-- group key prefix, member key prefix, community_limit.
-- Returns {next_cursor, subject, limit, current, subject, limit, current, ...};
-- with cursor '0' and what 'groups' it starts with the app's AV rooms
-- (subject '') when they exceed the plan.
local lim = redis.call('HMGET', KEYS[1], 'ug', 'gm', 'av')
local user_limit, member_limit, room_limit = tonumber(lim[1]), tonumber(lim[2]), tonumber(lim[3])
local found = {'0'}
local function over(subject, limit, current)
  found[#found + 1] = subject; found[#found + 1] = limit; found[#found + 1] = current
end
if ARGV[1] == 'users' then
  local scanned = redis.call('HSCAN', KEYS[4], ARGV[2], 'COUNT', tonumber(ARGV[3]))
  local pairs_ = scanned[2]
  for i = 1, #pairs_, 2 do
    local groups = tonumber(pairs_[i + 1])
    if groups > user_limit then over(pairs_[i], user_limit, groups) end
  end
  found[1] = scanned[1]
  return found
end
if ARGV[2] == '0' and room_limit >= 0 then
  local rooms = tonumber(redis.call('HGET', KEYS[2], 'rooms') or '0')
  if rooms > room_limit then over('', room_limit, rooms) end
end
local scanned = redis.call('SSCAN', KEYS[3], ARGV[2], 'COUNT', tonumber(ARGV[3]))
for _, group_id in ipairs(scanned[2]) do
  local group = redis.call('HMGET', ARGV[4] .. group_id, 't', 'mx')
  if group[1] then
    -- The limit that refuses this group's newcomers first: the plan's, or its own max_members.
    local limit = plan_member_limit(group[1], member_limit, tonumber(ARGV[6]))
    local own = tonumber(group[2]) or 0
    if own > 0 and (limit < 0 or own < limit) then limit = own end
    if limit >= 0 then
      local count = redis.call('SCARD', ARGV[5] .. group_id)
      if count > limit then over(group_id, limit, count) end
    end
  end
end
found[1] = scanned[1]
return found
