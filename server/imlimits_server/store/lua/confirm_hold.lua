-- ConfirmHold. KEYS: lim, h, hx, cnt. ARGV: nonce, keep_ms, group key prefix, held-members key prefix.
-- Makes what the hold still covers permanent. Returns {code, confirmed, known, now}: confirmed 1 for a
-- hold confirmed now or before; 0 for one cancelled or ended (judged by Redis's clock, even before a
-- worker has released it); known 0 when no outcome is kept (it ended more than keep_ms ago); now 1 when
-- this call confirmed it.
local _, refusal = app_limits(KEYS[1])
if refusal then return refusal end
local hold = redis.call('HMGET', KEYS[2], 'st', 'exp', 'g', 'gh', 'u')
if not hold[1] then return {0, 0, 0, 0} end
if hold[1] == 'c' then return {0, 1, 1, 0} end
if hold[1] ~= 'h' or now_ms() >= tonumber(hold[2]) then return {0, 0, 1, 0} end
local nonce, group_key, held_members_key = ARGV[1], ARGV[3] .. hold[3], ARGV[4] .. hold[3]
local users = still_held(held_members_key, nonce, hold[5])
if #users > 0 then
  redis.call('HDEL', held_members_key, unpack(users))
  redis.call('HINCRBY', KEYS[4], 'hmembers', -#users)
end
if hold[4] == '1' then
  local group = redis.call('HMGET', group_key, 't', 'h')
  if group[2] == nonce then
    redis.call('HDEL', group_key, 'h')
    redis.call('HINCRBY', KEYS[4], 'hgroups', -1)
    if group[1] == 'av' then redis.call('HINCRBY', KEYS[4], 'hrooms', -1) end
  end
end
close_hold(KEYS[2], KEYS[3], nonce, 'c', tonumber(ARGV[2]))
return {0, 1, 1, 1}
