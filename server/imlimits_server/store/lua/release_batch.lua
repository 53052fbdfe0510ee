-- One bounded step of a release worker on one app: first the holds that have ended (released as by
-- CancelHold, about `batch` memberships at most), else a batch of about `batch` members of one of the
-- app's tombstones, lowered and removed in one step, so a crash between steps loses nothing and a re-run
-- releases no one twice.
-- KEYS: uc, drain, lease, sealed, cursors, hx, cnt, gi, rsch.
-- ARGV: holder, lease_ms, batch, queued, keep_ms, then key prefixes: hold, group, members, held members,
-- tombstone.
-- Tombstone members are taken with SSCAN from a cursor kept per tombstone, not with
-- SPOP: random picks from a large set that keeps shrinking cost Redis about
-- twice the CPU. SSCAN may return a member twice across a rehash, so only
-- members still in the tombstone are released.
-- The lease keeps other replicas' workers off this app while its holder is
-- alive; they take over once it lapses. With nothing left to do now but holds
-- that have not ended, the app's schedule is set to the first end under
-- `queued` (the queue number the worker read; see release_worker.py). With
-- nothing left at all, `queued` is sealed: a destroy or hold presenting a
-- number not above it must queue again.
-- Returns {released, state, next, expired}: state 0 more to do, 1 nothing left (sealed), 2 only holds
-- that end at `next` (Redis ms) are left, -1 another holder's lease is live; `expired` holds were closed.
local holder = redis.call('GET', KEYS[3])
if holder and holder ~= ARGV[1] then return {0, -1, 0, 0} end
local batch = tonumber(ARGV[3])
local ended = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', now_ms(), 'LIMIT', 0, 16)
if #ended > 0 then
  redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
  local app = {counts = KEYS[7], user_counts = KEYS[1], group_index = KEYS[8], draining = KEYS[2],
               expiries = KEYS[6], hold = ARGV[6], group = ARGV[7], members = ARGV[8], held_members = ARGV[9],
               tombstone = ARGV[10]}
  local released, expired, spent = 0, 0, 0
  for _, nonce in ipairs(ended) do
    if spent >= batch then break end
    local count = release_hold(app, nonce, 'e', batch, tonumber(ARGV[5]))
    released, expired, spent = released + count, expired + 1, spent + count + 1
  end
  return {released, 0, 0, expired}
end
local tombstone = redis.call('SRANDMEMBER', KEYS[2])
-- A listed tombstone that is gone (only a hand-edited Redis has one) must not read as "nothing left".
while tombstone and redis.call('EXISTS', tombstone) == 0 do
  redis.call('SREM', KEYS[2], tombstone)
  redis.call('HDEL', KEYS[5], tombstone)
  tombstone = redis.call('SRANDMEMBER', KEYS[2])
end
if not tombstone then
  local first = redis.call('ZRANGE', KEYS[6], 0, 0, 'WITHSCORES')
  redis.call('DEL', KEYS[3])
  if first[1] then
    redis.call('HSET', KEYS[9], 'q', ARGV[4], 'due', first[2])
    return {0, 2, tonumber(first[2]), 0}
  end
  if tonumber(ARGV[4]) > tonumber(redis.call('GET', KEYS[4]) or '0') then redis.call('SET', KEYS[4], ARGV[4]) end
  return {0, 1, 0, 0}
end
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
local scan = redis.call('SSCAN', tombstone, redis.call('HGET', KEYS[5], tombstone) or '0', 'COUNT', batch)
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
return {#users, 0, 0, 0}
