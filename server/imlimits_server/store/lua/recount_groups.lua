-- Recounts groups and AV rooms from the group index, atomically.
-- KEYS: cnt, gi. ARGV: group key prefix ("{im:APP}:g:"), repair ('1'/'0').
-- Returns {recorded_groups, actual_groups, recorded_rooms, actual_rooms}.
local groups, rooms = 0, 0
for _, group_id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local group_type = redis.call('HGET', ARGV[1] .. group_id, 't')
  if group_type then
    groups = groups + 1
    if group_type == 'av' then rooms = rooms + 1 end
  end
end
local recorded = redis.call('HMGET', KEYS[1], 'groups', 'rooms')
if ARGV[2] == '1' then redis.call('HSET', KEYS[1], 'groups', groups, 'rooms', rooms) end
return {tonumber(recorded[1] or '0'), groups, tonumber(recorded[2] or '0'), rooms}
