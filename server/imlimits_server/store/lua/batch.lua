-- Batch: one app's checks in the order given, each decided by the body of its
-- own script (create_group, join_group, leave_group, confirm_hold,
-- cancel_hold, loaded above as functions of KEYS and ARGV), so every rule is
-- the unary one and a later check sees an earlier one's effect. Atomic per
-- check, and the whole run is atomic too, which is stronger than a batch
-- promises. A check that asks its caller to queue the app first (-4) ends the
-- run there, with nothing of it done: the caller queues and sends the rest,
-- so the order holds.
-- ARGV: per check, its script (c, j, l, h or x), key count, arg count, then its own ARGV.
-- KEYS: every check's own KEYS, in order. Returns one reply per check.
-- Every check of a run is of one app and none writes its limits: read them once.
local read_app_limits, limits_read = app_limits, nil
app_limits = function(limits_key)
  if not limits_read then limits_read = {read_app_limits(limits_key)} end
  return limits_read[1], limits_read[2]
end
local scripts = {c = create_group, j = join_group, l = leave_group, h = confirm_hold, x = cancel_hold}
local replies, k, a = {}, 1, 1
while a <= #ARGV do
  local run, key_count, arg_count = scripts[ARGV[a]], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local reply = run({unpack(KEYS, k, k + key_count - 1)}, {unpack(ARGV, a + 3, a + 2 + arg_count)})
  replies[#replies + 1] = reply
  if reply[1] == -4 then break end
  k, a = k + key_count, a + 3 + arg_count
end
return replies
