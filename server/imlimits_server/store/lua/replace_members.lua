-- ImportGroups with replace, at the stream's end: releases, one bounded slice
-- at a time, the members of a group that the stream did not name for it.
-- KEYS: g, m, stage, uc, seen, mh, cnt. ARGV: cursor, count, group_id. Returns next_cursor.
-- A held membership it releases is no longer its hold's (docs/holds.md), as after a leave.
-- Like import_groups.lua it keeps the stream's totals in `seen`, so a slice
-- retried after a lost reply counts once. The last slice drops the stage set
-- and marks the group replaced in `seen` (its state letter in capitals), in
-- the same step: a last slice sent again, or a group that HSCAN lists twice,
-- then changes nothing, where without the stage set it would release every
-- member named. A group destroyed meanwhile has nothing left to replace.
local state = redis.call('HGET', KEYS[5], ARGV[3])
if not state or state == string.upper(state) then return '0' end
local function replaced(final_state)
  redis.call('DEL', KEYS[3])
  redis.call('HSET', KEYS[5], ARGV[3], string.upper(final_state))
  return '0'
end
if redis.call('EXISTS', KEYS[1]) == 0 then return replaced(state) end
local scanned = redis.call('SSCAN', KEYS[2], ARGV[1], 'COUNT', tonumber(ARGV[2]))
local leaving = {}
for _, user in ipairs(scanned[2]) do
  if redis.call('SISMEMBER', KEYS[3], user) == 0 and redis.call('SREM', KEYS[2], user) == 1 then
    leaving[#leaving + 1] = user
  end
end
release_users(KEYS[4], leaving)
if #leaving > 0 then
  local held = redis.call('HDEL', KEYS[6], unpack(leaving))
  if held > 0 then redis.call('HINCRBY', KEYS[7], 'hmembers', -held) end
  redis.call('HINCRBY', KEYS[5], '\0removed', #leaving)
  if state == 's' then
    state = 'u'
    redis.call('HSET', KEYS[5], ARGV[3], state)
    redis.call('HINCRBY', KEYS[5], '\0updated', 1)
  end
end
if scanned[1] == '0' then return replaced(state) end
return scanned[1]
