-- JoinGroup. KEYS: lim, uc, g, m, and with a hold: cnt, mh, h, hx, rs, rsch.
-- ARGV: dry_run, community_limit, hold_ms, nonce, fingerprint, queued, group_id, users...
-- With hold_ms > 0 (and not a dry run) the newcomers' memberships are held (docs/holds.md); {-4} and
-- {-5} as in create_group.lua.
local hold_ms, dry_run = tonumber(ARGV[3]), ARGV[1] == '1'
local holding = hold_ms > 0 and not dry_run
if holding then
  local before = held_before(KEYS[7], ARGV[5])
  if before then return before end
end
local limits, refusal = app_limits(KEYS[1])
if refusal then return refusal end
local group = redis.call('HMGET', KEYS[3], 't', 'mx')
if not group[1] then return {10010} end
local newcomers = {}
for i = 8, #ARGV do
  -- A member already in the group is no newcomer: joins are idempotent.
  if redis.call('SISMEMBER', KEYS[4], ARGV[i]) == 0 then newcomers[#newcomers + 1] = ARGV[i] end
end
local plan_limit = plan_member_limit(group[1], limits.group_members, tonumber(ARGV[2]))
local count = redis.call('SCARD', KEYS[4])
refusal = refuse_newcomers(plan_limit, tonumber(group[2]), count, newcomers, limits.user_groups, KEYS[2])
if refusal then return refusal end
if dry_run then return {0} end
local ends = 0
if holding then
  ends = now_ms() + hold_ms
  if not release_covered(KEYS[9], KEYS[10], tonumber(ARGV[6]), ends) then return {-4} end
end
record_newcomers(KEYS[2], KEYS[4], newcomers)
if holding then
  open_hold({key = KEYS[7], expiries = KEYS[8], held_members = KEYS[6], counts = KEYS[5], nonce = ARGV[4],
             fingerprint = ARGV[5]}, ARGV[7], false, newcomers, ends)
end
return {0}
