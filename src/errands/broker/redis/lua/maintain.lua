-- errands_v1_maintain: bounded housekeeping, run by one worker at a time under a lock.
-- KEYS: the queue's standard key list (00_shared.lua).
-- ARGV: [1] result channel prefix, [2] lock owner, [3] lock ms, [4] limit per step,
--   [5] dead-set cap, [6] dead max age ms, [7] worker silence ms (a worker not seen for this
--   long is dropped from the list).
-- Returns: {-1} when another worker holds the lock, else {promoted, reaped, results expired,
--   idempotency records expired, dead trimmed, workers dropped}.
-- Invariants: every step is bounded by limit; nothing here can lose a live job.
local function maintain(KEYS, ARGV)
  local K = key_table(KEYS)
  if not redis.call('SET', K.maint, ARGV[2], 'NX', 'PX', tonumber(ARGV[3])) then return {-1} end
  local now = now_ms()
  local prefix, limit, cap = ARGV[1], tonumber(ARGV[4]), tonumber(ARGV[5])
  local promoted = promote_due(K, now, limit)
  local reaped = reap_expired(K, now, limit, prefix, cap)
  local old = redis.call('ZRANGE', K.results_x, '-inf', now, 'BYSCORE', 'LIMIT', 0, limit)
  if #old > 0 then
    redis.call('HDEL', K.results, unpack(old))
    redis.call('ZREM', K.results_x, unpack(old))
  end
  local stale = redis.call('ZRANGE', K.idem_x, '-inf', now, 'BYSCORE', 'LIMIT', 0, limit)
  if #stale > 0 then
    redis.call('HDEL', K.idem, unpack(stale))
    redis.call('ZREM', K.idem_x, unpack(stale))
  end
  -- Chords whose members never all reported (one died for good) are dropped with dead jobs.
  local old_chords = redis.call('ZRANGE', K.chords_x, '-inf', now - tonumber(ARGV[6]), 'BYSCORE',
    'LIMIT', 0, limit)
  for _, id in ipairs(old_chords) do
    local raw = redis.call('HGET', K.chords, id)
    if raw then drop_parts(K, id, cmsgpack.unpack(raw).s) end
    redis.call('HDEL', K.chords, id)
    redis.call('ZREM', K.chords_x, id)
  end
  local trimmed = trim_dead(K, cap)
  local aged = redis.call('ZRANGE', K.dead, '-inf', now - tonumber(ARGV[6]), 'BYSCORE',
    'LIMIT', 0, limit)
  for _, id in ipairs(aged) do
    redis.call('HDEL', K.jobs, id)
    redis.call('HDEL', K.meta, id)
  end
  if #aged > 0 then redis.call('ZREM', K.dead, unpack(aged)) end
  local dropped = 0
  local silence = tonumber(ARGV[7])
  local workers = redis.call('HGETALL', K.workers)
  for i = 1, math.min(#workers, limit * 2), 2 do
    local ok, info = pcall(cjson.decode, workers[i + 1])
    if not ok or type(info) ~= 'table' or (tonumber(info.seen) or 0) < now - silence then
      redis.call('HDEL', K.workers, workers[i])
      dropped = dropped + 1
    end
  end
  return {promoted, reaped, #old, #stale, trimmed + #aged, dropped}
end

redis.register_function('errands_v1_maintain', maintain)
