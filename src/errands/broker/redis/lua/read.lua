-- errands_v1_result and errands_v1_info: read-only views (flag no-writes, so replicas may serve).
-- KEYS: the queue's standard key list (00_shared.lua), of which each touches the ones listed in
--   its section.
--
-- errands_v1_result: one job's state and outcome.
-- KEYS it touches (of the queue's standard key list):
--   KEYS[6] meta (read)
--   KEYS[7] results (read)
--   KEYS[8] results_x (read)
--   KEYS[18] chords (read)
-- ARGV: [1] job id.
-- Returns: {state, outcome JSON or false, attempts}; state is the finished outcome's state when a
--   result is stored (and not expired), else the job's state (queued, scheduled, active, dead),
--   else 'waiting' for a chord's callback whose members have not all reported, else 'unknown'
--   (never existed, or finished and its result expired or was ignored). A job whose meta cannot
--   be read is 'corrupt' (the next fetch or maintenance buries it in the dead set).
--
-- errands_v1_info: the queue's counts, counters and workers.
-- KEYS it touches (of the queue's standard key list):
--   KEYS[1] ready (read)
--   KEYS[2] delayed (read)
--   KEYS[3] active (read)
--   KEYS[4] dead (read)
--   KEYS[13] stats (read)
--   KEYS[15] workers (read)
--   KEYS[17] cfg (read)
-- ARGV: none.
-- Returns: {ready, delayed, active, dead, paused (0|1), stats as a flat field/value array,
--   workers as a flat id/info array}.
local function result(KEYS, ARGV)
  local state = state_of(key_table(KEYS), ARGV[1])
  return state
end

local function info(KEYS, ARGV)
  local K = key_table(KEYS)
  return {
    redis.call('ZCARD', K.ready), redis.call('ZCARD', K.delayed),
    redis.call('ZCARD', K.active), redis.call('ZCARD', K.dead),
    redis.call('HGET', K.cfg, 'paused') == '1' and 1 or 0,
    redis.call('HGETALL', K.stats), redis.call('HGETALL', K.workers),
  }
end

redis.register_function{function_name = 'errands_v1_result', callback = result, flags = {'no-writes'}}
redis.register_function{function_name = 'errands_v1_info', callback = info, flags = {'no-writes'}}
