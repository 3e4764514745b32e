-- errands_v1_ack: settle a batch of jobs a worker ran.
-- KEYS: the queue's standard key list (00_shared.lua), of which it touches:
--   KEYS[1] ready (write)
--   KEYS[2] delayed (write)
--   KEYS[3] active (write)
--   KEYS[4] dead (read, write)
--   KEYS[5] jobs (read, write)
--   KEYS[6] meta (read, write)
--   KEYS[7] results (write)
--   KEYS[8] results_x (read, write)
--   KEYS[9] idem (read, write)
--   KEYS[10] idem_x (write)
--   KEYS[11] wake (write)
--   KEYS[13] stats (write)
--   KEYS[14] cancel (read, write)
--   KEYS[21] chord_fails (write)
--   KEYS[22] history (read, write)
--   KEYS[23] limits (read, write)
--   KEYS[24] limits_x (write)
--   KEYS[25] limit_wait (read, write)
--   KEYS[26] progress (write)
--   KEYS[27] events (write)
-- Outside KEYS: ARGV[1] .. id, the result channel of each job that succeeds, is cancelled or
--   dies here (published to).
-- ARGV: [1] result channel prefix, [2] dead-set cap, [3] n (<= 1000), then n records of 5
--   fields: id, lease token, kind ('succeeded' | 'retrying' | 'failed' | 'deferred' |
--   'limited'), outcome JSON, delay ms; then the events cap (0: no event; else an event per
--   job settled: succeeded, retried, deferred, dead or cancelled).
-- Returns: an array of n codes: 1 succeeded (result stored, job deleted), 2 scheduled for retry
--   or deferred, 3 dead (no attempts left, or not retryable), 4 cancelled (a retry of a job
--   asked to stop), 0 refused: the token is stale (the lease expired and another worker took
--   the job since).
-- Invariants: an acknowledged job leaves active in the same step as it enters delayed, dead or
--   finished; a retry is granted only while attempts < max attempts, whatever the worker says;
--   'deferred' (the worker does not know the task yet, as in a rolling deploy) charges no attempt;
--   nor does 'limited' (the task met its partner's own limit: RateLimited), whose rate limiters
--   back off for the delay (up to RATE_LIMITED_FREE times a job; then it is a retry). A job
--   leaving active gives back the concurrency slots it holds.
--   A success whose lease expired is still taken while nobody took the job again (reaped, it
--   waits in ready with the same token, meta ex): running it again would only repeat what is
--   done.
-- Flags: allow-oom. Acks free memory (payloads and meta go); a full Redis must take them.
local FIELDS = 5
-- RateLimited runs a job may have without spending attempts (errands.errors.MAX_RATE_LIMITED):
-- past them it spends its retries, so no job waits on a refusing service forever.
local RATE_LIMITED_FREE = 100

local function ack(KEYS, ARGV)
  local K = key_table(KEYS)
  local now = now_ms()
  local prefix, cap, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
  if n == 0 then return {} end
  if n > MAX_BATCH then return too_many('outcomes', n) end
  local ids = {}
  for i = 0, n - 1 do ids[i + 1] = ARGV[3 + i * FIELDS + 1] end
  -- The common case (succeeded) is batched: one read of meta, one write per key at the end.
  local metas = redis.call('HMGET', K.meta, unpack(ids))
  local events = tonumber(ARGV[4 + n * FIELDS]) or 0
  local payloads = nil -- the task names of events, read only when they are on
  if events > 0 then
    K.ev = events
    payloads = redis.call('HMGET', K.jobs, unpack(ids))
  end
  local any_cancel = redis.call('SCARD', K.cancel) > 0
  local seen, off_active, finished, results, expiries, histories = {}, {}, {}, {}, {}, {}
  local freed = {} -- concurrency slots given back, by limiter record (01_limits.lua)
  local codes = {}
  local done, retried, deferred, stored = 0, 0, 0, 0
  for i = 0, n - 1 do
    local b = 3 + i * FIELDS
    local id, token, kind, outcome = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4]
    local m = nil
    if metas[i + 1] and not seen[id] then m = decode_meta(metas[i + 1]) end
    local live = m and m.s == 'active' and tostring(m.d) == token
    -- A late success: nobody took the job since its lease was reaped (same token).
    local late = m and not live and kind == 'succeeded' and m.s == 'queued' and m.ex == 1
      and tostring(m.d) == token
    if not (live or late) then
      codes[#codes + 1] = 0
    else
      seen[id] = true  -- settled: a second record of it in this batch is stale
      if live then
        off_active[#off_active + 1] = id
        if m.lh then note_freed(freed, id, m) end
      else
        redis.call('ZREM', K.ready, id)
      end
      if kind == 'succeeded' then
        if m.ir ~= 1 then
          results[#results + 1] = id
          results[#results + 1] = outcome
          expiries[#expiries + 1] = now + m.rt
          expiries[#expiries + 1] = id
          redis.call('PUBLISH', prefix .. id, outcome)
        end
        release_idem(K, id, m)
        finished[#finished + 1] = id
        if m.h == 1 then histories[#histories + 1] = id end
        done = done + 1
        codes[#codes + 1] = 1
        if K.ev then emit(K, 'succeeded', id, payload_head(payloads[i + 1]), m.a) end
      elseif kind ~= 'failed' and any_cancel and redis.call('SISMEMBER', K.cancel, id) == 1 then
        stored = stored + finish(K, id, m, cjson.encode({state = 'cancelled', attempts = m.a}),
          now, prefix)
        redis.call('HINCRBY', K.stats, 'cancelled', 1)
        codes[#codes + 1] = 4
        if K.ev then emit(K, 'cancelled', id, payload_head(payloads[i + 1]), m.a) end
      elseif kind == 'deferred' or (kind == 'limited' and (m.rl or 0) < RATE_LIMITED_FREE)
          or ((kind == 'retrying' or kind == 'limited') and m.a < m.m) then
        if kind == 'deferred' or (kind == 'limited' and (m.rl or 0) < RATE_LIMITED_FREE) then
          -- Free: it never ran (deferred), or its service refused it (limited).
          m.a = math.max(m.a - 1, 0)
          deferred = deferred + 1
          if kind == 'limited' then
            m.rl = (m.rl or 0) + 1
            back_off(K, m, now + tonumber(ARGV[b + 5]), now)
          end
        else
          retried = retried + 1
          note_attempt(K, id, m, m.a, outcome_error(outcome), now)
        end
        m.s = 'scheduled'
        m.w = nil
        m.r = nil
        put_meta(K, id, m)
        redis.call('ZADD', K.delayed, now + tonumber(ARGV[b + 5]), id)
        codes[#codes + 1] = 2
        if K.ev then
          local err = kind == 'retrying' and outcome_error(outcome) or nil
          emit(K, kind == 'retrying' and 'retried' or 'deferred', id,
            payload_head(payloads[i + 1]), m.a, err and tostring(err.type or '') or nil)
        end
      else
        to_dead(K, id, m, outcome, now, prefix, cap)
        stored = stored + 1
        codes[#codes + 1] = 3
      end
    end
  end
  if #off_active > 0 then redis.call('ZREM', K.active, unpack(off_active)) end
  if next(freed) then free_noted(K, freed, now) end
  if #finished > 0 then
    redis.call('HDEL', K.jobs, unpack(finished))
    redis.call('HDEL', K.meta, unpack(finished))
    redis.call('HDEL', K.progress, unpack(finished))
    if any_cancel then redis.call('SREM', K.cancel, unpack(finished)) end
  end
  if #histories > 0 then redis.call('HDEL', K.history, unpack(histories)) end
  if #results > 0 then
    redis.call('HSET', K.results, unpack(results))
    redis.call('ZADD', K.results_x, unpack(expiries))
  end
  expire_some(K.results, K.results_x, now, 2 * (#expiries / 2 + stored))
  if done > 0 then redis.call('HINCRBY', K.stats, 'succeeded', done) end
  if retried > 0 then redis.call('HINCRBY', K.stats, 'retried', retried) end
  if deferred > 0 then redis.call('HINCRBY', K.stats, 'deferred', deferred) end
  return codes
end

redis.register_function{function_name = 'errands_v1_ack', callback = ack, flags = {'allow-oom'}}
