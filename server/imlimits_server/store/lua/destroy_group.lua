-- DestroyGroup, first step. KEYS: lim, cnt, uc, g, m, tomb, drain, gi. ARGV: batch, group_id.
-- The group stops existing at once; its member set moves to a tombstone that
-- drain_members.lua releases in bounded batches, so a 100,000-member group
-- never blocks Redis for long. Until a user's release, their count stays
-- high: the error is on the side of refusing, never of over-admitting.
-- Returns {code, released, remaining, others}: `others` counts tombstones of earlier destroys
-- still waiting (a server stopped mid-destroy), so the caller looks for them only when there are some.
local _, refusal = app_limits(KEYS[1])
if refusal then return refusal end
local group_type = redis.call('HGET', KEYS[4], 't')
if not group_type then return {10010} end
redis.call('DEL', KEYS[4])
redis.call('HINCRBY', KEYS[2], 'groups', -1)
redis.call('SREM', KEYS[8], ARGV[2])
if group_type == 'av' then redis.call('HINCRBY', KEYS[2], 'rooms', -1) end
if redis.call('EXISTS', KEYS[5]) == 0 then return {0, 0, 0, redis.call('SCARD', KEYS[7])} end
redis.call('RENAME', KEYS[5], KEYS[6])
redis.call('SADD', KEYS[7], KEYS[6])
local users = redis.call('SPOP', KEYS[6], tonumber(ARGV[1]))
release_users(KEYS[3], users)
local remaining = redis.call('SCARD', KEYS[6])
if remaining == 0 then redis.call('SREM', KEYS[7], KEYS[6]) end
local others = redis.call('SCARD', KEYS[7])
if remaining > 0 then others = others - 1 end
return {0, #users, remaining, others}
