-- errands_v1_purge_ready: delete a batch of the queue's waiting jobs for good (`errands purge`).
-- KEYS: the queue's standard key list (00_shared.lua), of which it touches:
--   KEYS[1] ready (read, write)
--   KEYS[2] delayed (read, write)
--   KEYS[5] jobs (write)
--   KEYS[6] meta (read, write)
--   KEYS[9] idem (read, write)
--   KEYS[10] idem_x (write)
--   KEYS[14] cancel (write)
--   KEYS[22] history (write)
--   KEYS[25] limit_wait (write)
--   KEYS[26] progress (write)
-- ARGV: [1] at most this many jobs (<= 1000), [2] '1' to take delayed jobs too (after the
--   ready ones), '0' for ready jobs only.
-- Returns: how many were deleted (0: none left). The caller calls again until it gets 0.
-- Invariants: an active job is never touched: only ids in ready (or delayed) whose meta says
--   queued (or scheduled) go, with their payload, meta, history, progress and idempotency key,
--   and no result (a waiter sees a job that never was). An entry whose record cannot be read
--   goes too: it was waiting, and the operator asked for the waiting jobs to go. A stray
--   entry of a job that is elsewhere (another state) only leaves the set it strayed into.
-- Flags: allow-oom (it frees memory).
local function drop_waiting(K, set, state, limit)
  local ids = redis.call('ZRANGE', set, 0, limit - 1)
  local deleted = 0
  for _, id in ipairs(ids) do
    redis.call('ZREM', set, id)
    local m = get_meta(K, id)
    if not m or m.s == state then
      if m then
        -- Whatever its mode: the job is gone, so the key may send a new one.
        if m.ik and redis.call('HGET', K.idem, m.ik) == id then
          redis.call('HDEL', K.idem, m.ik)
          redis.call('ZREM', K.idem_x, m.ik)
        end
        forget_history(K, id, m)
        if m.lw then redis.call('ZREM', K.limit_wait, m.lw) end
      else
        redis.call('HDEL', K.history, id)
      end
      redis.call('HDEL', K.jobs, id)
      redis.call('HDEL', K.meta, id)
      redis.call('HDEL', K.progress, id)
      redis.call('SREM', K.cancel, id)
      deleted = deleted + 1
    end
  end
  return deleted, #ids
end

local function purge_ready(KEYS, ARGV)
  local K = key_table(KEYS)
  local limit = math.min(tonumber(ARGV[1]), MAX_BATCH)
  if limit <= 0 then return 0 end
  local deleted, looked = drop_waiting(K, K.ready, 'queued', limit)
  if ARGV[2] == '1' and looked < limit then
    local more = drop_waiting(K, K.delayed, 'scheduled', limit - looked)
    deleted = deleted + more
  end
  return deleted
end

redis.register_function{function_name = 'errands_v1_purge_ready', callback = purge_ready,
  flags = {'allow-oom'}}
