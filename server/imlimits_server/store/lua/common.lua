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
-- was admitted under a higher limit stays (grandfathering).
local function refuse_newcomers(plan_limit, max_members, count, newcomers, user_limit, user_counts_key)
  local n = #newcomers
  if n == 0 then return nil end
  if plan_limit >= 0 and count + n > plan_limit then return {10038, plan_limit, count} end
  if max_members > 0 and count + n > max_members then return {10014, max_members, count} end
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

-- Redis's own clock in milliseconds: when a hold ends is judged by it, never by a replica's clock.
local function now_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

-- Whether a release worker looks at the app by `wanted_by` (Redis ms) if this script leaves it work (a hold
-- that ends then, a tombstone to drain now). The caller presents `queued`, a queue number it got for the
-- app (release_worker.py): it must be above the app's seal, and either newer than the last schedule a
-- worker set (the app is then due at once) or that schedule must come no later than `wanted_by`.
local function release_covered(sealed_key, schedule_key, queued, wanted_by)
  if queued <= tonumber(redis.call('GET', sealed_key) or '0') then return false end
  local schedule = redis.call('HMGET', schedule_key, 'q', 'due')
  if not schedule[1] or queued > tonumber(schedule[1]) then return true end
  return wanted_by >= tonumber(schedule[2])
end

-- A held check retried with its request_id finds its first attempt's hold: that hold is the answer
-- ({-6}: admitted before), or {-5} when the same request_id came with another request. nil: no first
-- attempt was admitted (a refusal is not remembered), so the check is decided now.
local function held_before(hold_key, fingerprint)
  if fingerprint == '' then return nil end
  local stored = redis.call('HGET', hold_key, 'fp')
  if not stored then return nil end
  if stored ~= fingerprint then return {-5} end
  return {-6}
end

-- Records what a check newly admitted as held by `hold` until `ends` (Redis ms): the memberships of
-- `newcomers` in the group, and the group itself when `covers_group`.
-- hold: {key, expiries, held_members, counts, nonce, fingerprint}.
local function open_hold(hold, group_id, covers_group, newcomers, ends)
  local fields = {'st', 'h', 'exp', ends, 'g', group_id, 'gh', covers_group and '1' or '0',
                  'u', table.concat(newcomers, '\n')}
  if hold.fingerprint ~= '' then
    fields[#fields + 1] = 'fp'
    fields[#fields + 1] = hold.fingerprint
  end
  redis.call('HSET', hold.key, unpack(fields))
  redis.call('ZADD', hold.expiries, ends, hold.nonce)
  if #newcomers == 0 then return end
  local owners = {}
  for _, user in ipairs(newcomers) do
    owners[#owners + 1] = user
    owners[#owners + 1] = hold.nonce
  end
  redis.call('HSET', hold.held_members, unpack(owners))
  redis.call('HINCRBY', hold.counts, 'hmembers', #newcomers)
end

-- The users of a hold's list whose membership that hold still holds: not left, not destroyed, not
-- confirmed, and not joined again since under another hold. Only these may be confirmed or released.
local function still_held(held_members_key, nonce, user_list)
  local users = {}
  for user in string.gmatch(user_list or '', '[^\n]+') do users[#users + 1] = user end
  if #users == 0 then return users end
  local holders = redis.call('HMGET', held_members_key, unpack(users))
  local mine = {}
  for i, user in ipairs(users) do
    if holders[i] == nonce then mine[#mine + 1] = user end
  end
  return mine
end

-- A hold's outcome is kept `keep_ms` for ConfirmHold, CancelHold and request_id retries; its user list goes.
local function close_hold(hold_key, expiries_key, nonce, outcome, keep_ms)
  redis.call('HSET', hold_key, 'st', outcome)
  redis.call('HDEL', hold_key, 'u')
  redis.call('PEXPIRE', hold_key, keep_ms)
  redis.call('ZREM', expiries_key, nonce)
end

-- Destroys an existing group: its id is free and its room slot released at once. Its members are
-- released here when at most `batch`, else its member set becomes `tombstone`, drained by the release
-- workers in bounded batches. Held counts of the group and its memberships end with it: a hold then
-- covers nothing of the group. k: {counts, user_counts, group, members, held_members, group_index,
-- draining}. Returns the memberships the group had, and whether they were left to the workers.
local function destroy_existing(k, group_id, group_type, batch, tombstone)
  local memberships = redis.call('SCARD', k.members)
  if redis.call('HEXISTS', k.group, 'h') == 1 then
    redis.call('HINCRBY', k.counts, 'hgroups', -1)
    if group_type == 'av' then redis.call('HINCRBY', k.counts, 'hrooms', -1) end
  end
  local held_memberships = redis.call('HLEN', k.held_members)
  if held_memberships > 0 then
    redis.call('HINCRBY', k.counts, 'hmembers', -held_memberships)
    redis.call('DEL', k.held_members)
  end
  redis.call('DEL', k.group)
  redis.call('HINCRBY', k.counts, 'groups', -1)
  redis.call('SREM', k.group_index, group_id)
  if group_type == 'av' then redis.call('HINCRBY', k.counts, 'rooms', -1) end
  if memberships <= batch then
    if memberships > 0 then
      release_users(k.user_counts, redis.call('SMEMBERS', k.members))
      redis.call('DEL', k.members)
    end
    return memberships, false
  end
  redis.call('RENAME', k.members, tombstone)
  redis.call('SADD', k.draining, tombstone)
  return memberships, true
end

-- The keys of group `group_id` from the key prefixes `p` (store/keys.py spells them).
local function group_keys(p, group_id)
  return {counts = p.counts, user_counts = p.user_counts, group = p.group .. group_id,
          members = p.members .. group_id, held_members = p.held_members .. group_id,
          group_index = p.group_index, draining = p.draining}
end

-- Releases what hold `nonce` still covers and closes it as `outcome` (x cancelled, e expired). A held
-- group is destroyed with every membership it has, held or not, as DestroyGroup would; otherwise each
-- membership the hold still holds is released. What a leave, a destroy or a confirm took first is not
-- touched, so nothing is released twice. p: key prefixes and app keys (group_keys, plus hold, tombstone,
-- expiries). Returns the memberships released and whether a tombstone was left to the workers.
local function release_hold(p, nonce, outcome, batch, keep_ms)
  local hold_key = p.hold .. nonce
  local hold = redis.call('HMGET', hold_key, 'st', 'g', 'gh', 'u')
  if hold[1] ~= 'h' then return 0, false end
  local k = group_keys(p, hold[2])
  local released, left = 0, false
  local group = redis.call('HMGET', k.group, 't', 'h')
  if hold[3] == '1' and group[2] == nonce then
    released, left = destroy_existing(k, hold[2], group[1], batch, p.tombstone .. 'h' .. nonce)
  else
    local users = still_held(k.held_members, nonce, hold[4])
    if #users > 0 then
      redis.call('HDEL', k.held_members, unpack(users))
      redis.call('HINCRBY', k.counts, 'hmembers', -#users)
      local leaving = {}
      for _, user in ipairs(users) do
        if redis.call('SREM', k.members, user) == 1 then leaving[#leaving + 1] = user end
      end
      release_users(k.user_counts, leaving)
      released = #leaving
    end
  end
  close_hold(hold_key, p.expiries, nonce, outcome, keep_ms)
  return released, left
end
