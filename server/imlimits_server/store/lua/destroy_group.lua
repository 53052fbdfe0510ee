-- DestroyGroup. KEYS: lim, cnt, uc, g, m, gi, drain, tomb, sealed. ARGV: batch, group_id, queued.
-- `queued` is the release-queue sequence number the caller holds for this
-- app (0: none). A group of at most `batch` members is released here, in
-- full. A larger one stops existing at once (its id is free, its room slot
-- released) and its member set becomes a tombstone that the release workers
-- drain in bounded batches; that needs the app queued under a number no
-- worker has sealed yet (see release_worker.py), else nothing changes and the
-- answer asks the caller to queue the app and call again.
-- Returns {code, held, step}: held is the number of memberships the group
-- had; step 0 released here, 1 left to the workers, -1 queue first.
local _, refusal = app_limits(KEYS[1])
if refusal then return refusal end
local group_type = redis.call('HGET', KEYS[4], 't')
if not group_type then return {10010} end
local held = redis.call('SCARD', KEYS[5])
local inline = held <= tonumber(ARGV[1])
if not inline then
  local queued = tonumber(ARGV[3])
  if queued == 0 or queued <= tonumber(redis.call('GET', KEYS[9]) or '0') then return {0, held, -1} end
end
redis.call('DEL', KEYS[4])
redis.call('HINCRBY', KEYS[2], 'groups', -1)
redis.call('SREM', KEYS[6], ARGV[2])
if group_type == 'av' then redis.call('HINCRBY', KEYS[2], 'rooms', -1) end
if inline then
  if held > 0 then
    release_users(KEYS[3], redis.call('SMEMBERS', KEYS[5]))
    redis.call('DEL', KEYS[5])
  end
  return {0, held, 0}
end
redis.call('RENAME', KEYS[5], KEYS[8])
redis.call('SADD', KEYS[7], KEYS[8])
return {0, held, 1}
