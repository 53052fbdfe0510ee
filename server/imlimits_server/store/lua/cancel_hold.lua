-- CancelHold. KEYS: lim, h, hx, cnt, uc, gi, drain, rs, rsch.
-- ARGV: nonce, queued, batch, keep_ms, then key prefixes: hold, group, members, held members, tombstone.
-- Releases at once what the hold still covers (release_hold). A held group of more than `batch` members
-- leaves a tombstone, which needs the app queued for a worker that looks at once (release_covered):
-- else nothing changes and {-4} asks the caller to queue the app and call again.
-- Returns {code, released, left, closed}: left 1 when a tombstone was left to the workers, closed 1 when
-- this call cancelled the hold. A hold cancelled, confirmed or ended before releases nothing here (an
-- ended one is the workers' to release).
local _, refusal = app_limits(KEYS[1])
if refusal then return refusal end
local nonce, batch = ARGV[1], tonumber(ARGV[3])
local hold = redis.call('HMGET', KEYS[2], 'st', 'exp', 'g', 'gh')
local now = now_ms()
if hold[1] ~= 'h' or now >= tonumber(hold[2]) then return {0, 0, 0, 0} end
if hold[4] == '1' and redis.call('HGET', ARGV[6] .. hold[3], 'h') == nonce
    and redis.call('SCARD', ARGV[7] .. hold[3]) > batch
    and not release_covered(KEYS[8], KEYS[9], tonumber(ARGV[2]), now) then
  return {-4}
end
local released, left = release_hold(
  {counts = KEYS[4], user_counts = KEYS[5], group_index = KEYS[6], draining = KEYS[7], expiries = KEYS[3],
   hold = ARGV[5], group = ARGV[6], members = ARGV[7], held_members = ARGV[8], tombstone = ARGV[9]},
  nonce, 'x', batch, tonumber(ARGV[4]))
return {0, released, left and 1 or 0, 1}
