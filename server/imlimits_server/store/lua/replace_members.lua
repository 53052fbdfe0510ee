-- ImportGroups with replace, at the stream's end: releases, one bounded slice
-- at a time, the members of a group that the stream did not name for it.
-- KEYS: g, m, stage, uc. ARGV: cursor, count. Returns {next_cursor, released};
-- the stage set is dropped with the last slice. A group destroyed meanwhile
-- has nothing left to replace.
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[3])
  return {'0', 0}
end
local scanned = redis.call('SSCAN', KEYS[2], ARGV[1], 'COUNT', tonumber(ARGV[2]))
local leaving = {}
for _, user in ipairs(scanned[2]) do
  if redis.call('SISMEMBER', KEYS[3], user) == 0 and redis.call('SREM', KEYS[2], user) == 1 then
    leaving[#leaving + 1] = user
  end
end
release_users(KEYS[4], leaving)
if scanned[1] == '0' then redis.call('DEL', KEYS[3]) end
return {scanned[1], #leaving}
