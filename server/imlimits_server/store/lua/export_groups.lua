-- ExportGroups: reads the named groups in order until `budget` members are
-- read, so one call never holds Redis for long.
-- KEYS: gi (routes the call to the app's slot). ARGV: group key prefix,
-- member key prefix, budget, per_record, group ids...
-- Returns {consumed, {group_id, type, owner, max_members, whole, members...}, ...}:
-- `whole` '1' when the members follow, '0' when the group has more than
-- per_record members and the caller pages them itself. A destroyed group is
-- skipped. An owner who left a group whose type makes the owner a member is
-- exported as no owner, so that importing the export reproduces the members.
local budget, per_record = tonumber(ARGV[3]), tonumber(ARGV[4])
local reply = {0}
local read = 0
for i = 5, #ARGV do
  local group_id = ARGV[i]
  local members_key = ARGV[2] .. group_id
  local count = redis.call('SCARD', members_key)
  if read > 0 and count <= per_record and read + count > budget then break end
  reply[1] = i - 4
  local group = redis.call('HMGET', ARGV[1] .. group_id, 't', 'o', 'mx')
  if group[1] then
    local owner = group[2] or ''
    if owner ~= '' and group[1] ~= 'av' and redis.call('SISMEMBER', members_key, owner) == 0 then owner = '' end
    local record = {group_id, group[1], owner, group[3] or '0', '0'}
    if count <= per_record then
      record[5] = '1'
      for _, user in ipairs(redis.call('SMEMBERS', members_key)) do record[#record + 1] = user end
      read = read + count
    end
    reply[#reply + 1] = record
  end
end
return reply
