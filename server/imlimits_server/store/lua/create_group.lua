-- CreateGroup / CreateRoom. KEYS: lim, cnt, uc, g, m, gi, mh, and with a hold: h, hx, rs, rsch.
-- ARGV: type, owner, max_members, dry_run, has_members, community_limit, group_id, hold_ms, nonce,
-- fingerprint, queued, newcomers...
-- With hold_ms > 0 (and not a dry run) what is admitted is held (docs/holds.md); {-4} asks the caller
-- to queue the app for the release workers and call again, {-5} is a request_id reused for another request.
local hold_ms, dry_run = tonumber(ARGV[8]), ARGV[4] == '1'
local holding = hold_ms > 0 and not dry_run
if holding then
  local before = held_before(KEYS[8], ARGV[10])
  if before then return before end
end
local limits, refusal = app_limits(KEYS[1])
if refusal then return refusal end
local group_type, owner = ARGV[1], ARGV[2]
local max_members = tonumber(ARGV[3])
local newcomers = {}
for i = 12, #ARGV do newcomers[#newcomers + 1] = ARGV[i] end

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
local ends = 0
if holding then
  ends = now_ms() + hold_ms
  if not release_covered(KEYS[10], KEYS[11], tonumber(ARGV[11]), ends) then return {-4} end
end

redis.call('HSET', KEYS[4], 't', group_type, 'o', owner, 'mx', max_members)
record_newcomers(KEYS[3], KEYS[5], newcomers)
redis.call('HINCRBY', KEYS[2], 'groups', 1)
redis.call('SADD', KEYS[6], ARGV[7])
if group_type == 'av' then redis.call('HINCRBY', KEYS[2], 'rooms', 1) end
if holding then
  redis.call('HSET', KEYS[4], 'h', ARGV[9])
  redis.call('HINCRBY', KEYS[2], 'hgroups', 1)
  if group_type == 'av' then redis.call('HINCRBY', KEYS[2], 'hrooms', 1) end
  open_hold({key = KEYS[8], expiries = KEYS[9], held_members = KEYS[7], counts = KEYS[2], nonce = ARGV[9],
             fingerprint = ARGV[10]}, ARGV[7], true, newcomers, ends)
end
return {0}
