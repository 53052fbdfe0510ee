-- Writes a plan change if nobody else wrote since it was read (optimistic
-- concurrency), together with the limits every check reads, so a check never
-- sees a plan without its limits. KEYS: lim, plan, req (optional).
-- ARGV: expected_version, plan_json, st, ug, gm, av, cm, stored_request, request_ttl.
-- Returns 1 when written, 0 on a conflict: another write since the read, or the
-- request id answered meanwhile (the caller reloads and replays that answer).
local version = redis.call('HGET', KEYS[1], 'ver') or ''
if version ~= ARGV[1] then return 0 end
if KEYS[3] and redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[1], 'ver', (tonumber(version) or 0) + 1, 'st', ARGV[3], 'ug', ARGV[4], 'gm', ARGV[5],
           'av', ARGV[6], 'cm', ARGV[7])
if KEYS[3] then redis.call('SET', KEYS[3], ARGV[8], 'EX', tonumber(ARGV[9])) end
return 1
