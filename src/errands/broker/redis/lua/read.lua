-- errands_v1_result: one job's state and outcome (read-only: flag no-writes, so replicas may serve).
-- KEYS: the queue's standard key list (00_shared.lua).
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
local function result(KEYS, ARGV)
  local state = state_of(key_table(KEYS), ARGV[1])
  return state
end

redis.register_function{function_name = 'errands_v1_result', callback = result, flags = {'no-writes'}}
