-- errands_v1_release: give jobs back without spending an attempt (graceful shutdown, or the
-- other jobs of a child killed for one job's hard time limit).
-- KEYS: the queue's standard key list (00_shared.lua), of which it touches:
--   KEYS[1] ready (write)
--   KEYS[2] delayed (write)
--   KEYS[3] active (write)
--   KEYS[5] jobs (write)
--   KEYS[6] meta (read, write)
--   KEYS[7] results (write)
--   KEYS[8] results_x (read, write)
--   KEYS[9] idem (read, write)
--   KEYS[10] idem_x (write)
--   KEYS[11] wake (write)
--   KEYS[13] stats (write)
--   KEYS[14] cancel (read, write)
--   KEYS[22] history (write)
--   KEYS[23] limits (read, write)
--   KEYS[25] limit_wait (read, write)
--   KEYS[26] progress (write)
-- Outside KEYS: ARGV[1] .. id, the result channel of each job that ends cancelled
--   (published to).
-- ARGV: [1] result channel prefix, [2] n, then n pairs {id, token}.
-- Returns: how many were given back (a stale token is skipped: someone else holds that job;
--   a job that was asked to stop ends cancelled instead and is not counted).
-- Invariants: a released job returns to its original place in ready.
-- Flags: allow-oom (it frees a lease; a full Redis must take it).
local function release(KEYS, ARGV)
  local K = key_table(KEYS)
  local prefix, n = ARGV[1], tonumber(ARGV[2])
  local released, stored = 0, 0
  local now = now_ms()
  for i = 0, n - 1 do
    local id, token = ARGV[3 + i * 2], ARGV[4 + i * 2]
    local m = get_meta(K, id)
    if m and m.s == 'active' and tostring(m.d) == token then
      redis.call('ZREM', K.active, id)
      free_slots(K, id, m, now)
      m.a = math.max(m.a - 1, 0)
      if redis.call('SISMEMBER', K.cancel, id) == 1 then
        -- Asked to stop while it ran: given back, it ends cancelled instead of running again.
        stored = stored + finish(K, id, m, cjson.encode({state = 'cancelled', attempts = m.a}),
          now, prefix)
        redis.call('HINCRBY', K.stats, 'cancelled', 1)
      else
        to_ready(K, id, m, m.sc)
        released = released + 1
      end
    end
  end
  expire_some(K.results, K.results_x, now, 2 * stored)
  arm_wake(K.wake, released)
  return released
end

redis.register_function{function_name = 'errands_v1_release', callback = release,
  flags = {'allow-oom'}}
