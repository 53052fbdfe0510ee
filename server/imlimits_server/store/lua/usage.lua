-- GetUsage. KEYS: lim, cnt, uc, g, m, hx, mh. ARGV: user ('' for none), want_group ('1'/'0'), community_limit.
-- Returns {found, st, ug, gm, av, cm, rooms, groups, user_groups, group_found, group_members,
--          group_type, max_members, member_limit (-1: none),
--          holds, held_groups, held_rooms, held_memberships, held_group_members}.
local lim = redis.call('HMGET', KEYS[1], 'st', 'ug', 'gm', 'av', 'cm')
if not lim[1] then return {0} end
local cnt = redis.call('HMGET', KEYS[2], 'rooms', 'groups', 'hgroups', 'hrooms', 'hmembers')
local user_groups = 0
if ARGV[1] ~= '' then user_groups = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0') end
local group_found, group_members, group_type, max_members, member_limit = 0, 0, '', 0, -1
local held_group_members = 0
if ARGV[2] == '1' then
  local group = redis.call('HMGET', KEYS[4], 't', 'mx')
  if group[1] then
    group_found, group_members = 1, redis.call('SCARD', KEYS[5])
    held_group_members = redis.call('HLEN', KEYS[7])
    group_type, max_members = group[1], tonumber(group[2]) or 0
    -- The limit its joins meet: the plan's for its type (10038), or its own cap (10014) where lower.
    member_limit = plan_member_limit(group_type, tonumber(lim[3]), tonumber(ARGV[3]))
    if max_members > 0 and (member_limit < 0 or max_members < member_limit) then member_limit = max_members end
  end
end
return {1, tonumber(lim[1]), tonumber(lim[2]), tonumber(lim[3]), tonumber(lim[4]), tonumber(lim[5]),
        tonumber(cnt[1] or '0'), tonumber(cnt[2] or '0'), user_groups, group_found, group_members,
        group_type, max_members, member_limit,
        redis.call('ZCARD', KEYS[6]), tonumber(cnt[3] or '0'), tonumber(cnt[4] or '0'), tonumber(cnt[5] or '0'),
        held_group_members}
