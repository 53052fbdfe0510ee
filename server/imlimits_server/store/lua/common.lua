-- Shared by every check script (prepended at load time). The IM codes and
-- their order are SPEC section 2's table; limits come from the app's `lim`
-- hash, written atomically with each plan change.

-- The plan's member cap for a group type: -1 means none (AV chat rooms).
local function plan_member_limit(group_type, group_member_limit, community_limit)
  if group_type == 'av' then return -1 end
  if group_type == 'community' then return community_limit end
  return group_member_limit
end

-- The first refusal of 10038, 10014, 10037 for `newcomers` joining a group
-- of `count` members, or nil. Existing members are never re-checked, so what
-- was admitted under a higher limit stays (grandfathering). 10038 and 10014
-- end with the number of newcomers, for the refusal's text.
local function refuse_newcomers(plan_limit, max_members, count, newcomers, user_limit, user_counts_key)
  local n = #newcomers
  if n == 0 then return nil end
  if plan_limit >= 0 and count + n > plan_limit then return {10038, plan_limit, count, n} end
  if max_members > 0 and count + n > max_members then return {10014, max_members, count, n} end
  local counts = redis.call('HMGET', user_counts_key, unpack(newcomers))
  local refusal = nil
  for i, user in ipairs(newcomers) do
    local groups = tonumber(counts[i]) or 0
    if groups + 1 > user_limit then
      if refusal == nil then refusal = {10037, user_limit, groups} end
      refusal[#refusal + 1] = user
    end
  end
  return refusal
end

local function record_newcomers(user_counts_key, members_key, newcomers)
  if #newcomers == 0 then return end
  redis.call('SADD', members_key, unpack(newcomers))
  for _, user in ipairs(newcomers) do redis.call('HINCRBY', user_counts_key, user, 1) end
end

-- Lowers each user's group count by one, dropping the field at zero so idle
-- users cost no memory.
local function release_users(user_counts_key, users)
  for _, user in ipairs(users) do
    if redis.call('HINCRBY', user_counts_key, user, -1) <= 0 then redis.call('HDEL', user_counts_key, user) end
  end
end

-- The app's limits and status, or a refusal: -1 unknown app, 60016 deactivated.
local function app_limits(limits_key)
  local lim = redis.call('HMGET', limits_key, 'st', 'ug', 'gm', 'av', 'cm')
  if not lim[1] then return nil, {-1} end
  if lim[1] == '1' then return nil, {60016} end
  return {user_groups = tonumber(lim[2]), group_members = tonumber(lim[3]), av_rooms = tonumber(lim[4]),
          community = lim[5] == '1'}, nil
end
