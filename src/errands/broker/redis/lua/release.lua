-- errands_v1_release: give jobs back without spending an attempt (graceful shutdown, or the
-- other jobs of a child killed for one job's hard time limit).
-- KEYS: the queue's standard key list (00_shared.lua).
-- ARGV: [1] n, then n pairs {id, token}.
-- Returns: how many were given back (a stale token is skipped: someone else holds that job).
-- Invariants: a released job returns to its original place in ready.
local function release(KEYS, ARGV)
  local K = key_table(KEYS)
  local n = tonumber(ARGV[1])
  local released = 0
  for i = 0, n - 1 do
    local id, token = ARGV[2 + i * 2], ARGV[3 + i * 2]
    local m = get_meta(K, id)
    if m and m.s == 'active' and tostring(m.d) == token then
      redis.call('ZREM', K.active, id)
      m.a = math.max(m.a - 1, 0)
      to_ready(K, id, m, m.sc)
      released = released + 1
    end
  end
  arm_wake(K, released)
  return released
end

redis.register_function('errands_v1_release', release)
