-- errands_v1_redrive: move dead jobs back to ready with a fresh set of attempts.
-- KEYS: the queue's standard key list (00_shared.lua), of which it touches:
--   KEYS[1] ready (write)
--   KEYS[4] dead (read, write)
--   KEYS[6] meta (read, write)
--   KEYS[7] results (write)
--   KEYS[8] results_x (write)
--   KEYS[11] wake (write)
--   KEYS[12] seq (read, write)
-- ARGV: [1] limit, then job ids; with no ids, the oldest `limit` dead jobs.
-- Returns: the ids moved back.
-- Invariants: a redriven job has no result record (waiters see it pending again) and is in
--   ready only; its idempotency record is not revived; its stall and loss counts start again.
--   A chord member's chord is not revived: the client fails the chords of this queue's dead
--   members before it redrives (RedisBroker.redrive), so a redriven member runs on its own.
local function redrive(KEYS, ARGV)
  local K = key_table(KEYS)
  local limit = math.min(tonumber(ARGV[1]), MAX_BATCH)
  if limit <= 0 then return {} end
  local ids = {}
  if #ARGV > 1 then
    for i = 2, math.min(#ARGV, limit + 1) do ids[#ids + 1] = ARGV[i] end
  else
    ids = redis.call('ZRANGE', K.dead, 0, limit - 1)
  end
  local moved = {}
  for _, id in ipairs(ids) do
    local m = get_meta(K, id)
    if m and m.s == 'dead' then
      redis.call('ZREM', K.dead, id)
      redis.call('HDEL', K.results, id)
      redis.call('ZREM', K.results_x, id)
      m.a = 0
      m.st = 0
      m.lo = nil
      m.ik = nil
      to_ready(K, id, m, ready_score(K, m.p))
      moved[#moved + 1] = id
    end
  end
  arm_wake(K.wake, #moved)
  return moved
end

redis.register_function('errands_v1_redrive', redrive)
