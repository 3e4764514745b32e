-- errands_v1_purge: delete dead jobs for good.
-- KEYS: the queue's standard key list (00_shared.lua), of which it touches:
--   KEYS[4] dead (read, write)
--   KEYS[5] jobs (write)
--   KEYS[6] meta (write)
--   KEYS[22] history (write)
--   KEYS[26] progress (write)
-- ARGV: [1] limit, then job ids; with no ids, the oldest `limit` dead jobs.
-- Returns: how many were deleted. Their result records stay until they expire, and so do the
--   notes of chord members (chord_fails), so that their chords still fail.
-- Flags: allow-oom (it frees memory).
local function purge(KEYS, ARGV)
  local K = key_table(KEYS)
  local limit = math.min(tonumber(ARGV[1]), MAX_BATCH)
  if limit <= 0 then return 0 end
  local ids = {}
  if #ARGV > 1 then
    for i = 2, math.min(#ARGV, limit + 1) do ids[#ids + 1] = ARGV[i] end
  else
    ids = redis.call('ZRANGE', K.dead, 0, limit - 1)
  end
  local deleted = 0
  for _, id in ipairs(ids) do
    if redis.call('ZREM', K.dead, id) == 1 then
      redis.call('HDEL', K.jobs, id)
      redis.call('HDEL', K.meta, id)
      redis.call('HDEL', K.history, id)
      redis.call('HDEL', K.progress, id)
      deleted = deleted + 1
    end
  end
  return deleted
end

redis.register_function{function_name = 'errands_v1_purge', callback = purge,
  flags = {'allow-oom'}}
