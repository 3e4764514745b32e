-- errands_v1_maintain: bounded housekeeping, run by one worker at a time under a lock.
-- KEYS: the queue's standard key list (00_shared.lua), of which it touches:
--   KEYS[1] ready (write)
--   KEYS[2] delayed (read, write)
--   KEYS[3] active (read, write)
--   KEYS[4] dead (read, write)
--   KEYS[5] jobs (read, write)
--   KEYS[6] meta (read, write)
--   KEYS[7] results (write)
--   KEYS[8] results_x (read, write)
--   KEYS[9] idem (read, write)
--   KEYS[10] idem_x (read, write)
--   KEYS[11] wake (write)
--   KEYS[12] seq (read, write)
--   KEYS[13] stats (write)
--   KEYS[14] cancel (read, write)
--   KEYS[15] workers (read, write)
--   KEYS[16] maint (read, write)
--   KEYS[18] chords (read, write)
--   KEYS[19] chord_parts (write)
--   KEYS[20] chords_x (read, write)
--   KEYS[21] chord_fails (write)
--   KEYS[22] history (read, write)
--   KEYS[23] limits (read, write)
--   KEYS[25] limit_wait (read, write)
--   KEYS[26] progress (write)
--   KEYS[27] events (write)
--     (through to_dead, which writes it only when a call sets K.ev: maintenance does not, so
--     the jobs it ends dead are not in the event stream)
-- Outside KEYS: ARGV[1] .. id, the result channel of each job it sends to the dead set or
--   ends cancelled, and of each expired chord's callback (published to).
-- ARGV: [1] result channel prefix, [2] lock owner, [3] lock ms, [4] limit per step,
--   [5] dead-set cap, [6] dead max age ms, [7] worker silence ms (a worker not seen within
--   its lease, or for this long when its record names none, is dropped from the list).
-- Returns: {-1} when another worker holds the lock, else {promoted, reaped, results expired,
--   idempotency records expired, dead trimmed, workers dropped, chords failed, saturated, died}:
--   saturated is 1 when a step had more to do than its limit let it (the owner calls again at
--   once: the lock lets its owner in); died is a flat array of pairs {id, outcome} of the jobs
--   this call sent to the dead set (stalled, or buried).
-- Invariants: every step is bounded by limit; nothing here can lose a live job; a chord whose
--   deadline passed (members not all sent, or not all reported) fails with a result saying so.
-- Flags: allow-oom (it frees memory).
local function chord_expired(c, now)
  local why
  if c.ar == 0 then
    why = 'its members were not all sent (the sender stopped halfway?)'
  else
    why = 'its members did not all report before it expired (a member was lost?)'
  end
  return failed_outcome('ChordFailed', 'the chord will not call back: ' .. why, 0, now, nil)
end

local function maintain(KEYS, ARGV)
  local K = key_table(KEYS)
  K.died = {}
  local owner, lock_ms = ARGV[2], tonumber(ARGV[3])
  local holder = redis.call('GET', K.maint)
  if holder and holder ~= owner then return {-1} end
  if not holder then redis.call('SET', K.maint, owner, 'PX', lock_ms) end
  local now = now_ms()
  local prefix, limit, cap = ARGV[1], tonumber(ARGV[4]), tonumber(ARGV[5])
  local promoted = promote_due(K, now, limit, prefix, cap)
  local reaped = reap_expired(K, now, limit, prefix, cap)
  local results = expire_some(K.results, K.results_x, now, limit)
  local stale = expire_some(K.idem, K.idem_x, now, limit)
  local old_chords = redis.call('ZRANGE', K.chords_x, '-inf', now, 'BYSCORE', 'LIMIT', 0, limit)
  for _, id in ipairs(old_chords) do
    local raw = redis.call('HGET', K.chords, id)
    local ok, c = pcall(cmsgpack.unpack, raw or '')
    if raw and ok and type(c) == 'table' and type(c.s) == 'number' then
      drop_parts(K, id, c.s)
      store_result(K, id, {ir = c.ir, rt = c.rt}, chord_expired(c, now), now, prefix)
      redis.call('HINCRBY', K.stats, 'failed', 1)
    end
    redis.call('HDEL', K.chords, id)
    redis.call('ZREM', K.chords_x, id)
  end
  local trimmed = trim_dead(K, cap)
  local aged = redis.call('ZRANGE', K.dead, '-inf', now - tonumber(ARGV[6]), 'BYSCORE',
    'LIMIT', 0, limit)
  for _, id in ipairs(aged) do
    redis.call('HDEL', K.jobs, id)
    redis.call('HDEL', K.meta, id)
    redis.call('HDEL', K.history, id)
    redis.call('HDEL', K.progress, id)
  end
  if #aged > 0 then redis.call('ZREM', K.dead, unpack(aged)) end
  local dropped = 0
  local silence = tonumber(ARGV[7])
  local workers = redis.call('HGETALL', K.workers)
  for i = 1, math.min(#workers, limit * 2), 2 do
    local ok, info = pcall(cjson.decode, workers[i + 1])
    if not ok or not worker_live(info, now, silence) then
      redis.call('HDEL', K.workers, workers[i])
      dropped = dropped + 1
    end
  end
  local saturated = 0
  if promoted >= limit or reaped >= limit or results >= limit or stale >= limit
      or #old_chords >= limit or #aged >= limit or trimmed >= MAX_BATCH then
    saturated = 1
  end
  return {promoted, reaped, results, stale, trimmed + #aged, dropped, #old_chords, saturated,
    K.died}
end

redis.register_function{function_name = 'errands_v1_maintain', callback = maintain,
  flags = {'allow-oom'}}
