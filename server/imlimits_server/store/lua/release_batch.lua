-- One bounded batch of a release worker: lowers the counts of up to `batch`
-- members of one of the app's tombstones and removes them from it, in one
-- step, so a crash between batches loses nothing and a re-run releases no one
-- twice. KEYS: uc, drain, lease, sealed. ARGV: holder, lease_ms, batch, queued.
-- The lease keeps other replicas' workers off this app while its holder is
-- alive; they take over once it lapses. With nothing left, `queued` (the
-- queue number the worker read) is sealed: a destroy queued under a number
-- not above it must queue again (see release_worker.py).
-- Returns the memberships released (0: nothing was left), or -1 when another holder's lease is live.
local holder = redis.call('GET', KEYS[3])
if holder and holder ~= ARGV[1] then return -1 end
local tombstone = redis.call('SRANDMEMBER', KEYS[2])
-- A listed tombstone that is gone (only a hand-edited Redis has one) must not read as "nothing left".
while tombstone and redis.call('EXISTS', tombstone) == 0 do
  redis.call('SREM', KEYS[2], tombstone)
  tombstone = redis.call('SRANDMEMBER', KEYS[2])
end
if not tombstone then
  if tonumber(ARGV[4]) > tonumber(redis.call('GET', KEYS[4]) or '0') then redis.call('SET', KEYS[4], ARGV[4]) end
  redis.call('DEL', KEYS[3])
  return 0
end
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
local users = redis.call('SPOP', tombstone, tonumber(ARGV[3]))
release_users(KEYS[1], users)
if redis.call('EXISTS', tombstone) == 0 then redis.call('SREM', KEYS[2], tombstone) end
return #users
