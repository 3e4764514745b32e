-- errands_v1_cancel: cancel one job, wherever it is.
-- KEYS: the queue's standard key list (00_shared.lua), of which it touches:
--   KEYS[1] ready (write)
--   KEYS[2] delayed (write)
--   KEYS[4] dead (write)
--   KEYS[5] jobs (read, write)
--   KEYS[6] meta (read, write)
--   KEYS[7] results (write)
--   KEYS[8] results_x (read, write)
--   KEYS[9] idem (read, write)
--   KEYS[10] idem_x (write)
--   KEYS[13] stats (write)
--   KEYS[14] cancel (write)
--   KEYS[22] history (write)
--   KEYS[25] limit_wait (write)
--   KEYS[26] progress (write)
--   KEYS[27] events (write)
-- Outside KEYS: ARGV[1] .. id, the job's result channel, when it ends cancelled here
--   (published to).
-- ARGV: [1] result channel prefix, [2] job id, [3] the events cap (0: no event; else a
--   'cancelled' event when it ends the job here).
-- Returns: 1 cancelled while queued or scheduled (it will never run), 2 running: a stop was
--   requested (the worker sees it at its next heartbeat; the task can poll ctx.is_cancelled()),
--   3 removed from the dead set, 0 unknown, already finished, or a record that cannot be read
--   (left for fetch or maintenance to bury).
-- Invariants: a cancelled queued job leaves ready/delayed and gets a 'cancelled' result at once.
-- Flags: allow-oom (cancelling frees memory; a full Redis must take it).
local function cancel(KEYS, ARGV)
  local K = key_table(KEYS)
  local now = now_ms()
  local prefix, id = ARGV[1], ARGV[2]
  local m = get_meta(K, id)
  if not m then return 0 end
  if m.s == 'active' then
    redis.call('SADD', K.cancel, id)
    return 2
  end
  local code = 1
  if m.s == 'queued' then
    redis.call('ZREM', K.ready, id)
  elseif m.s == 'scheduled' then
    redis.call('ZREM', K.delayed, id)
  else
    redis.call('ZREM', K.dead, id) -- a chord member's note stays: its chord still fails
    code = 3
  end
  if tonumber(ARGV[3] or 0) > 0 then
    K.ev = tonumber(ARGV[3])
    emit(K, 'cancelled', id, payload_head(redis.call('HGET', K.jobs, id)), m.a)
  end
  local stored = finish(K, id, m, cjson.encode({state = 'cancelled', attempts = m.a}), now, prefix)
  expire_some(K.results, K.results_x, now, 2 * stored)
  redis.call('HINCRBY', K.stats, 'cancelled', 1)
  return code
end

redis.register_function{function_name = 'errands_v1_cancel', callback = cancel,
  flags = {'allow-oom'}}
