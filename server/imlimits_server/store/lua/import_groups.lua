-- ImportGroups: applies a batch of group records, each atomically (the batch
-- as a whole is, too), with no limit checked: an import records what already
-- exists on the platform (grandfathered). A member is counted only when it is
-- not yet in the set, read and written in one script, so a join racing the
-- import is never lost nor counted twice.
-- KEYS: lim, cnt, uc, gi, seen, then per record: g, m[, stage when replacing].
-- ARGV: replace ('1'/'0'), ttl, records, then per record: group_id, type, owner, max_members, n, members...
-- `seen` (hash group_id -> c created / u updated / s untouched, and the
-- stream's totals under field names no group id can take) and the `stage`
-- sets (members named so far, for replace) belong to this stream. Totals are
-- kept with the writes, so a batch retried after a lost reply counts once.
-- Returns {created, updated, added, applied, code, detail}: code 0, or the
-- refusal of record `applied` + 1 (-1 unknown app, 60016 deactivated, -2 type
-- mismatch with detail the existing type, -3 a batch behind a refused one);
-- earlier records stay applied.
local _, refusal = app_limits(KEYS[1])
if refusal then return {0, 0, 0, 0, refusal[1], ''} end
-- Batches sent behind a refused one apply nothing: no record after a refused record is applied.
if redis.call('HEXISTS', KEYS[5], '\0refused') == 1 then return {0, 0, 0, 0, -3, ''} end
local replace, ttl = ARGV[1] == '1', tonumber(ARGV[2])
local created, updated, added = 0, 0, 0
local function count_totals()
  if created > 0 then redis.call('HINCRBY', KEYS[5], '\0created', created) end
  if updated > 0 then redis.call('HINCRBY', KEYS[5], '\0updated', updated) end
  if added > 0 then redis.call('HINCRBY', KEYS[5], '\0added', added) end
  redis.call('EXPIRE', KEYS[5], ttl)
end
local per_record = replace and 3 or 2
local arg = 4
for record = 1, tonumber(ARGV[3]) do
  local group_id, group_type, owner, max_members = ARGV[arg], ARGV[arg + 1], ARGV[arg + 2], ARGV[arg + 3]
  local n = tonumber(ARGV[arg + 4])
  local first, last = arg + 5, arg + 4 + n
  arg = last + 1
  local group_key = KEYS[5 + (record - 1) * per_record + 1]
  local members_key = KEYS[5 + (record - 1) * per_record + 2]
  local existing = redis.call('HMGET', group_key, 't', 'o', 'mx')
  if existing[1] and existing[1] ~= group_type then
    count_totals()
    redis.call('HSET', KEYS[5], '\0refused', record)
    return {created, updated, added, record - 1, -2, existing[1]}
  end
  local state = redis.call('HGET', KEYS[5], group_id) or nil
  local changed = false
  if not existing[1] then
    redis.call('HSET', group_key, 't', group_type, 'o', owner, 'mx', max_members)
    redis.call('SADD', KEYS[4], group_id)
    redis.call('HINCRBY', KEYS[2], 'groups', 1)
    if group_type == 'av' then redis.call('HINCRBY', KEYS[2], 'rooms', 1) end
    if state ~= 'c' then
      created = created + 1
      state = 'c'
      redis.call('HSET', KEYS[5], group_id, state)
    end
  else
    -- The platform's current owner and cap replace what was recorded; a record continuing a group may omit them.
    if owner ~= '' and existing[2] ~= owner then redis.call('HSET', group_key, 'o', owner); changed = true end
    if max_members ~= '0' and existing[3] ~= max_members then
      redis.call('HSET', group_key, 'mx', max_members); changed = true
    end
  end
  local named = {}
  if owner ~= '' and group_type ~= 'av' then named[1] = owner end
  for i = first, last do named[#named + 1] = ARGV[i] end
  -- In slices: Lua's unpack is bounded (about 8000 values) and a record names up to 10,001 users.
  for i = 1, #named, 1000 do
    local slice = {unpack(named, i, math.min(i + 999, #named))}
    local present = redis.call('SMISMEMBER', members_key, unpack(slice))
    local newcomers, fresh = {}, {}
    for j, user in ipairs(slice) do
      if present[j] == 0 and not fresh[user] then
        fresh[user] = true
        newcomers[#newcomers + 1] = user
      end
    end
    record_newcomers(KEYS[3], members_key, newcomers)
    added = added + #newcomers
    if #newcomers > 0 then changed = true end
  end
  if replace and #named > 0 then
    local stage_key = KEYS[5 + (record - 1) * per_record + 3]
    for i = 1, #named, 1000 do redis.call('SADD', stage_key, unpack(named, i, math.min(i + 999, #named))) end
    redis.call('EXPIRE', stage_key, ttl)
  end
  if state == nil or (state == 's' and changed) then
    if changed then updated = updated + 1; state = 'u' else state = 's' end
    redis.call('HSET', KEYS[5], group_id, state)
  end
end
count_totals()
return {created, updated, added, tonumber(ARGV[3]), 0, ''}
