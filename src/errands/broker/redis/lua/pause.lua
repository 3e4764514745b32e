-- errands_v1_set_paused: pause a queue (fetch hands out nothing) or resume it.
-- KEYS: the queue's standard key list (00_shared.lua), of which it touches:
--   KEYS[17] cfg (read, write)
-- ARGV: [1] '1' to pause, '0' to resume.
-- Returns: 1 when that changed the queue, 0 when it already was so (nothing written).
local function set_paused(KEYS, ARGV)
  local K = key_table(KEYS)
  local wanted = ARGV[1] == '1'
  if (redis.call('HGET', K.cfg, 'paused') == '1') == wanted then return 0 end
  redis.call('HSET', K.cfg, 'paused', wanted and '1' or '0')
  return 1
end

redis.register_function{function_name = 'errands_v1_set_paused', callback = set_paused}
