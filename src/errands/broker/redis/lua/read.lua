-- errands_v1_result and errands_v1_info: read-only views (flag no-writes, so replicas may serve).
-- KEYS: the queue's standard key list (00_shared.lua).
--
-- errands_v1_result ARGV: [1] job id.
-- Returns: {state, outcome JSON or false, attempts}; state is the finished outcome's state when a
--   result is stored (and not expired), else the job's state (queued, scheduled, active, dead),
--   else 'waiting' for a chord's callback whose members have not all reported, else 'unknown'
--   (never existed, or finished and its result expired or was ignored). A job whose meta cannot
--   be read is 'corrupt' (the next fetch or maintenance buries it in the dead set).
--
-- errands_v1_info ARGV: none.
-- Returns: {ready, delayed, active, dead, paused (0|1), stats as a flat field/value array,
--   workers as a flat id/info array}.
-- A job's state as `result` reports it: {state, outcome or false, attempts}, and its meta.
local function state_of(K, id)
  local outcome = redis.call('HGET', K.results, id)
  local m = get_meta(K, id)
  if outcome then
    local expiry = tonumber(redis.call('ZSCORE', K.results_x, id) or 0)
    if expiry > now_ms() then
      local ok, decoded = pcall(cjson.decode, outcome)
      if not ok or type(decoded) ~= 'table' or type(decoded.state) ~= 'string' then
        return {'corrupt', false, 0}, m
      end
      return {decoded.state, outcome, tonumber(decoded.attempts) or (m and m.a) or 0}, m
    end
  end
  if m == false then return {'corrupt', false, 0}, m end
  if m then return {m.s, false, m.a}, m end
  -- A chord's callback is not a job until its last member reports: it is waiting.
  if redis.call('HEXISTS', K.chords, id) == 1 then return {'waiting', false, 0}, m end
  return {'unknown', false, 0}, m
end

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
