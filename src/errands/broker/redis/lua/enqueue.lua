-- errands_v1_enqueue: add a batch of jobs to one queue.
-- KEYS: the queue's standard key list (00_shared.lua).
-- ARGV: [1] result channel prefix (unused here, for a uniform call), [2] n, then n records of
--   11 fields: id, payload, priority (0-9), delay_ms (0 = ready now), idempotency key ('' = none),
--   idempotency ttl ms, idempotency mode ('w' window | 'u' until finished), max attempts,
--   result ttl ms, ignore result (0|1), max stalls.
-- Returns: a flat array of n pairs {job id, code}; code 1 = enqueued, 0 = duplicate (the id is the
--   existing job's: same id already known, or same idempotency key inside its window).
-- Invariants: a new job is in exactly one of ready or delayed; at most one live job per key.
local FIELDS = 11

local function enqueue(KEYS, ARGV)
  local K = key_table(KEYS)
  local now = now_ms()
  local n = tonumber(ARGV[2])
  local out = {}
  local added = 0
  for i = 0, n - 1 do
    local b = 2 + i * FIELDS
    local id, payload = ARGV[b + 1], ARGV[b + 2]
    local priority, delay = tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4])
    local ikey, ittl, imode = ARGV[b + 5], tonumber(ARGV[b + 6]), ARGV[b + 7]
    local existing = nil
    if redis.call('HEXISTS', K.meta, id) == 1 or redis.call('HEXISTS', K.results, id) == 1 then
      existing = id
    elseif ikey ~= '' then
      local holder = redis.call('HGET', K.idem, ikey)
      if holder then
        local expiry = tonumber(redis.call('ZSCORE', K.idem_x, ikey) or 0)
        if expiry > now then existing = holder end
      end
    end
    if existing then
      out[#out + 1] = existing
      out[#out + 1] = 0
    else
      local m = {
        a = 0, m = tonumber(ARGV[b + 8]), p = priority, st = 0, xs = tonumber(ARGV[b + 11]),
        d = 0, rt = tonumber(ARGV[b + 9]), ir = tonumber(ARGV[b + 10]),
      }
      if ikey ~= '' then
        m.ik = ikey
        m.im = imode
        redis.call('HSET', K.idem, ikey, id)
        redis.call('ZADD', K.idem_x, now + ittl, ikey)
      end
      redis.call('HSET', K.jobs, id, payload)
      if delay > 0 then
        m.s = 'scheduled'
        m.sc = 0
        put_meta(K, id, m)
        redis.call('ZADD', K.delayed, now + delay, id)
      else
        to_ready(K, id, m, ready_score(K, priority))
      end
      added = added + 1
      out[#out + 1] = id
      out[#out + 1] = 1
    end
  end
  if added > 0 then redis.call('HINCRBY', K.stats, 'enqueued', added) end
  -- Delayed jobs arm it too: an idle worker wakes, learns when they fall due, and sleeps.
  arm_wake(K, added)
  return out
end

redis.register_function('errands_v1_enqueue', enqueue)
