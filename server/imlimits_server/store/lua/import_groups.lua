-- ImportGroups: one step of a stream, with no limit checked: an import
-- records what already exists on the platform (grandfathered). A member is
-- counted only when it is not yet in the set, read and written in one
-- script, so a join racing the import is never lost nor counted twice.
-- KEYS: lim, cnt, uc, gi, seen, then per piece: g, m[, stage when replacing].
-- ARGV: replace ('1'/'0'), ttl, step, pieces, then per piece: part, group_id,
-- type, owner, max_members, token, n, members...
-- A step is either whole records (part 'w') or one slice of a record too
-- large for one bounded call: its first slice (part 'f') checks and creates
-- the group, the slices after it (part 'c') only add members. A record is
-- refused only at its start, so a refused record changes nothing. The first
-- slice marks the group's incarnation (field 'in' of the group, set once,
-- `token` if none), and later slices add members only to that incarnation:
-- a group destroyed while its record was being applied is not brought back.
-- `seen` (hash group_id -> c created / u updated / s untouched, and the
-- stream's state under field names no group id can take) and the `stage`
-- sets (members named so far, for replace) belong to this stream.
-- Steps are numbered from 1 and apply in order, once each: `seen` keeps the
-- last one applied and the refusal, so a step resent after a lost reply
-- learns what its first attempt did (applied, refused) instead of being
-- applied twice or mistaken for a step behind a refusal.
-- Returns {applied, code, detail}: code 0 (all pieces applied, now or by an
-- earlier attempt), or the refusal of piece `applied` + 1 (-1 unknown app,
-- 60016 deactivated, -2 type mismatch with detail the existing type; earlier
-- pieces stay applied), -3 behind a refused step (nothing applied), -4 an
-- earlier step has not been applied yet (nothing applied: send that one first).
local seen, step = KEYS[5], tonumber(ARGV[3])
local refused = redis.call('HGET', seen, '\0refused')
if refused then
  local at, piece, code, detail = string.match(refused, '^(%d+):(%d+):(-?%d+):(.*)$')
  if tonumber(at) == step then return {tonumber(piece), tonumber(code), detail} end
  return {0, -3, ''}
end
local last = tonumber(redis.call('HGET', seen, '\0step') or '0')
if step <= last then return {tonumber(ARGV[4]), 0, ''} end
if step > last + 1 then return {0, -4, ''} end
local replace, ttl = ARGV[1] == '1', tonumber(ARGV[2])
local created, updated, added = 0, 0, 0
local function finish_step()
  if created > 0 then redis.call('HINCRBY', seen, '\0created', created) end
  if updated > 0 then redis.call('HINCRBY', seen, '\0updated', updated) end
  if added > 0 then redis.call('HINCRBY', seen, '\0added', added) end
  redis.call('HSET', seen, '\0step', step)
  redis.call('EXPIRE', seen, ttl)
end
local function refuse(piece, code, detail)
  finish_step()
  redis.call('HSET', seen, '\0refused', step .. ':' .. piece .. ':' .. code .. ':' .. detail)
  return {piece, code, detail}
end
-- A slice continuing a record belongs to a record accepted before: it is finished whatever the app's status now.
if ARGV[5] ~= 'c' then
  local _, app_refusal = app_limits(KEYS[1])
  if app_refusal then return refuse(0, app_refusal[1], '') end
end
local per_piece = replace and 3 or 2
local arg = 5
for piece = 1, tonumber(ARGV[4]) do
  local part, group_id, group_type, owner, max_members, token =
    ARGV[arg], ARGV[arg + 1], ARGV[arg + 2], ARGV[arg + 3], ARGV[arg + 4], ARGV[arg + 5]
  local n = tonumber(ARGV[arg + 6])
  local first, last_member = arg + 7, arg + 6 + n
  arg = last_member + 1
  local group_key = KEYS[5 + (piece - 1) * per_piece + 1]
  local members_key = KEYS[5 + (piece - 1) * per_piece + 2]
  local state = redis.call('HGET', seen, group_id) or nil
  local changed, apply = false, true
  if part == 'c' then
    apply = redis.call('HGET', group_key, 'in') == redis.call('HGET', seen, '\0in')
  else
    local existing = redis.call('HMGET', group_key, 't', 'o', 'mx')
    if existing[1] and existing[1] ~= group_type then return refuse(piece - 1, -2, existing[1]) end
    if not existing[1] then
      redis.call('HSET', group_key, 't', group_type, 'o', owner, 'mx', max_members)
      redis.call('SADD', KEYS[4], group_id)
      redis.call('HINCRBY', KEYS[2], 'groups', 1)
      if group_type == 'av' then redis.call('HINCRBY', KEYS[2], 'rooms', 1) end
      if state ~= 'c' then
        created = created + 1
        state = 'c'
        redis.call('HSET', seen, group_id, state)
      end
    else
      -- The platform's current owner and cap replace what was recorded; a record continuing a group may omit them.
      if owner ~= '' and existing[2] ~= owner then redis.call('HSET', group_key, 'o', owner); changed = true end
      if max_members ~= '0' and existing[3] ~= max_members then
        redis.call('HSET', group_key, 'mx', max_members); changed = true
      end
    end
    if part == 'f' then
      redis.call('HSETNX', group_key, 'in', token)
      redis.call('HSET', seen, '\0in', redis.call('HGET', group_key, 'in'))
    end
  end
  if apply then
    local named = {}
    if owner ~= '' and group_type ~= 'av' then named[1] = owner end
    for i = first, last_member do named[#named + 1] = ARGV[i] end
    -- In slices: Lua's unpack is bounded (about 8000 values).
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
      local stage_key = KEYS[5 + (piece - 1) * per_piece + 3]
      for i = 1, #named, 1000 do redis.call('SADD', stage_key, unpack(named, i, math.min(i + 999, #named))) end
      redis.call('EXPIRE', stage_key, ttl)
    end
    if state == nil or (state == 's' and changed) then
      if changed then updated = updated + 1; state = 'u' else state = 's' end
      redis.call('HSET', seen, group_id, state)
    end
  end
end
finish_step()
return {tonumber(ARGV[4]), 0, ''}
