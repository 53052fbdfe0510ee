-- CreateGroup / CreateRoom. KEYS: lim, cnt, uc, g, m, gi.
-- ARGV: type, owner, max_members, dry_run, has_members, community_limit, group_id, newcomers...
local limits, refusal = app_limits(KEYS[1])
if refusal then return refusal end
local group_type, owner = ARGV[1], ARGV[2]
local max_members, dry_run = tonumber(ARGV[3]), ARGV[4] == '1'
local newcomers = {}
for i = 8, #ARGV do newcomers[#newcomers + 1] = ARGV[i] end

local existing = redis.call('HMGET', KEYS[4], 't', 'o')
if existing[1] then
  if owner ~= '' and existing[2] == owner then return {10025} end
  return {10021}
end
if group_type == 'av' and ARGV[5] == '1' then return {10007} end
if group_type == 'community' and not limits.community then return {10059} end
local rooms = tonumber(redis.call('HGET', KEYS[2], 'rooms') or '0')
if group_type == 'av' and limits.av_rooms >= 0 and rooms >= limits.av_rooms then
  return {10036, limits.av_rooms, rooms}
end
local plan_limit = plan_member_limit(group_type, limits.group_members, tonumber(ARGV[6]))
if plan_limit >= 0 and max_members > plan_limit then return {10038, plan_limit, max_members} end
refusal = refuse_newcomers(plan_limit, max_members, 0, newcomers, limits.user_groups, KEYS[3])
if refusal then return refusal end
if dry_run then return {0} end

redis.call('HSET', KEYS[4], 't', group_type, 'o', owner, 'mx', max_members)
record_newcomers(KEYS[3], KEYS[5], newcomers)
redis.call('HINCRBY', KEYS[2], 'groups', 1)
redis.call('SADD', KEYS[6], ARGV[7])
if group_type == 'av' then redis.call('HINCRBY', KEYS[2], 'rooms', 1) end
return {0}
