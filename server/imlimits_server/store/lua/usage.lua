-- GetUsage. KEYS: lim, cnt, uc, g, m, hx, mh. ARGV: user ('' for none), want_group ('1'/'0').
-- Returns {found, st, ug, gm, av, cm, rooms, groups, user_groups, group_found, group_members,
--          holds, held_groups, held_rooms, held_memberships, held_group_members}.
local lim = redis.call('HMGET', KEYS[1], 'st', 'ug', 'gm', 'av', 'cm')
if not lim[1] then return {0} end
local cnt = redis.call('HMGET', KEYS[2], 'rooms', 'groups', 'hgroups', 'hrooms', 'hmembers')
local user_groups = 0
if ARGV[1] ~= '' then user_groups = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0') end
local group_found, group_members, held_group_members = 0, 0, 0
if ARGV[2] == '1' then
  group_found = redis.call('EXISTS', KEYS[4])
  if group_found == 1 then
    group_members = redis.call('SCARD', KEYS[5])
    held_group_members = redis.call('HLEN', KEYS[7])
  end
end
return {1, tonumber(lim[1]), tonumber(lim[2]), tonumber(lim[3]), tonumber(lim[4]), tonumber(lim[5]),
        tonumber(cnt[1] or '0'), tonumber(cnt[2] or '0'), user_groups, group_found, group_members,
        redis.call('ZCARD', KEYS[6]), tonumber(cnt[3] or '0'), tonumber(cnt[4] or '0'), tonumber(cnt[5] or '0'),
        held_group_members}
