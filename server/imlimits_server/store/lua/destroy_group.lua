-- DestroyGroup. KEYS: lim, cnt, uc, g, m, gi, drain, tomb, sealed, mh, rsch. ARGV: batch, group_id, queued.
-- `queued` is the release-queue sequence number the caller holds for this
-- app (0: none). A group of at most `batch` members is released here, in
-- full. A larger one stops existing at once (its id is free, its room slot
-- released) and its member set becomes a tombstone that the release workers
-- drain in bounded batches; that needs the app queued under a number for
-- which a worker looks at the app at once (release_covered, and
-- release_worker.py), else nothing changes and the answer asks the caller to
-- queue the app and call again. A held group, or
-- one with held members, is destroyed the same way: its holds then cover
-- nothing of it.
-- Returns {code, memberships, step}: the memberships the group had; step 0
-- released here, 1 left to the workers, -1 queue first.
local _, refusal = app_limits(KEYS[1])
if refusal then return refusal end
local group_type = redis.call('HGET', KEYS[4], 't')
if not group_type then return {10010} end
local batch = tonumber(ARGV[1])
if redis.call('SCARD', KEYS[5]) > batch then
  if not release_covered(KEYS[9], KEYS[11], tonumber(ARGV[3]), now_ms()) then
    return {0, redis.call('SCARD', KEYS[5]), -1}
  end
end
local memberships, left = destroy_existing(
  {counts = KEYS[2], user_counts = KEYS[3], group = KEYS[4], members = KEYS[5], held_members = KEYS[10],
   group_index = KEYS[6], draining = KEYS[7]}, ARGV[2], group_type, batch, KEYS[8])
return {0, memberships, left and 1 or 0}
