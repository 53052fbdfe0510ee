-- Releases one batch of a destroyed group's memberships.
-- KEYS: uc, tomb, drain. ARGV: batch. Returns {released, remaining}.
local users = redis.call('SPOP', KEYS[2], tonumber(ARGV[1]))
release_users(KEYS[1], users)
local remaining = redis.call('SCARD', KEYS[2])
if remaining == 0 then redis.call('SREM', KEYS[3], KEYS[2]) end
return {#users, remaining}
