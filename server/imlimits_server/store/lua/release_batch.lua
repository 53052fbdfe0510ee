-- One bounded batch of a release worker: lowers the counts of about `batch`
-- members of one of the app's tombstones and removes them from it, in one
-- step, so a crash between batches loses nothing and a re-run releases no one
-- twice. KEYS: uc, drain, lease, sealed, cursors. ARGV: holder, lease_ms, batch, queued.
-- Members are taken with SSCAN from a cursor kept per tombstone, not with
-- SPOP: random picks from a large set that keeps shrinking cost Redis about
-- twice the CPU. SSCAN may return a member twice across a rehash, so only
-- members still in the tombstone are released.
-- The lease keeps other replicas' workers off this app while its holder is
-- alive; they take over once it lapses. With nothing left, `queued` (the
-- queue number the worker read) is sealed: a destroy queued under a number
-- not above it must queue again (see release_worker.py).
-- Returns {released, done}: done 1 when nothing was left (sealed), or {-1, 0} when another holder's lease is live.
local holder = redis.call('GET', KEYS[3])
if holder and holder ~= ARGV[1] then return {-1, 0} end
local tombstone = redis.call('SRANDMEMBER', KEYS[2])
-- A listed tombstone that is gone (only a hand-edited Redis has one) must not read as "nothing left".
while tombstone and redis.call('EXISTS', tombstone) == 0 do
  redis.call('SREM', KEYS[2], tombstone)
  redis.call('HDEL', KEYS[5], tombstone)
  tombstone = redis.call('SRANDMEMBER', KEYS[2])
end
if not tombstone then
  if tonumber(ARGV[4]) > tonumber(redis.call('GET', KEYS[4]) or '0') then redis.call('SET', KEYS[4], ARGV[4]) end
  redis.call('DEL', KEYS[3])
  return {0, 1}
end
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
local scan = redis.call('SSCAN', tombstone, redis.call('HGET', KEYS[5], tombstone) or '0', 'COUNT', ARGV[3])
local users, seen = {}, {}
if #scan[2] > 0 then
  local present = redis.call('SMISMEMBER', tombstone, unpack(scan[2]))
  for i, user in ipairs(scan[2]) do
    if present[i] == 1 and not seen[user] then
      seen[user] = true
      users[#users + 1] = user
    end
  end
end
if #users > 0 then redis.call('SREM', tombstone, unpack(users)) end
release_users(KEYS[1], users)
if redis.call('EXISTS', tombstone) == 0 then
  redis.call('SREM', KEYS[2], tombstone)
  redis.call('HDEL', KEYS[5], tombstone)
else
  -- Cursor 0 ends a full cycle; what a rehash hid from it is found by the next one.
  redis.call('HSET', KEYS[5], tombstone, scan[1])
end
return {#users, 0}
