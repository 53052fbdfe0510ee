-- JoinGroup. KEYS: lim, uc, g, m. ARGV: dry_run, community_limit, users...
local limits, refusal = app_limits(KEYS[1])
if refusal then return refusal end
local group = redis.call('HMGET', KEYS[3], 't', 'mx')
if not group[1] then return {10010} end
local newcomers = {}
for i = 3, #ARGV do
  -- A member already in the group is no newcomer: joins are idempotent.
  if redis.call('SISMEMBER', KEYS[4], ARGV[i]) == 0 then newcomers[#newcomers + 1] = ARGV[i] end
end
local plan_limit = plan_member_limit(group[1], limits.group_members, tonumber(ARGV[2]))
local count = redis.call('SCARD', KEYS[4])
refusal = refuse_newcomers(plan_limit, tonumber(group[2]), count, newcomers, limits.user_groups, KEYS[2])
if refusal then return refusal end
if ARGV[1] ~= '1' then record_newcomers(KEYS[2], KEYS[4], newcomers) end
return {0}
