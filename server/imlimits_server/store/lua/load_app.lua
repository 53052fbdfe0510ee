-- Reads an app's stored plan for a plan operation in one atomic step.
-- KEYS: lim, plan, req (optional). Returns {version, plan_json, stored_request}.
local version = redis.call('HGET', KEYS[1], 'ver') or ''
local plan = redis.call('GET', KEYS[2]) or ''
local stored = ''
if KEYS[3] then stored = redis.call('GET', KEYS[3]) or '' end
return {version, plan, stored}
