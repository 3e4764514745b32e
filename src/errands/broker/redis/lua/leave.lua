-- errands_v1_worker_leave: take a worker that stops cleanly off the queue's worker list at once.
-- KEYS: the queue's standard key list (00_shared.lua), of which it touches:
--   KEYS[15] workers (read, write)
-- ARGV: [1] worker id.
-- Returns: 1 when its record was there, else 0 (never beat here, or already dropped).
-- Flags: allow-oom (it frees memory).
local function worker_leave(KEYS, ARGV)
  local K = key_table(KEYS)
  return redis.call('HDEL', K.workers, ARGV[1])
end

redis.register_function{function_name = 'errands_v1_worker_leave', callback = worker_leave,
  flags = {'allow-oom'}}
