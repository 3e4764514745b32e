-- errands_v1_fetch: hand up to n jobs to a worker under a fresh lease.
-- KEYS: the queue's standard key list (00_shared.lua), of which it touches:
--   KEYS[1] ready (read, write)
--   KEYS[2] delayed (read, write)
--   KEYS[3] active (read, write)
--   KEYS[4] dead (read, write)
--   KEYS[5] jobs (read, write)
--   KEYS[6] meta (read, write)
--   KEYS[7] results (write)
--   KEYS[8] results_x (write)
--   KEYS[9] idem (read, write)
--   KEYS[10] idem_x (write)
--   KEYS[11] wake (write)
--   KEYS[12] seq (read, write)
--   KEYS[13] stats (write)
--   KEYS[14] cancel (read, write)
--   KEYS[17] cfg (read)
--   KEYS[21] chord_fails (write)
--   KEYS[22] history (read, write)
--   KEYS[23] limits (read, write)
--   KEYS[24] limits_x (read, write)
--   KEYS[25] limit_wait (read, write)
--   KEYS[26] progress (write)
--   KEYS[27] events (write)
-- Outside KEYS: ARGV[1] .. id, the result channel of each job it sends to the dead set
--   (published to).
-- ARGV: [1] result channel prefix, [2] n (<= 1000), [3] lease ms, [4] worker id,
--   [5] promote limit (due delayed jobs moved per call), [6] reap limit (expired leases per call),
--   [7] dead-set cap, [8] the limiters of the worker's app (msgpack, 01_limits.lua; '' = none),
--   [9] at most this many jobs that name limiters (the worker's places that start a job at
--   once: a job a limiter lets out must not wait in the worker behind others), [10] the events
--   cap (0: no event; else a 'started' event per job handed out, 'dead' per job it kills).
-- Returns: {jobs, next_due_ms, paused, next_expiry_ms, more, died} where jobs is a flat array of
--   4-tuples {id, payload, attempt, token}, next_due_ms is how long until the next delayed job is
--   due (-1: none), paused is 1 when the queue is paused (no job handed out), next_expiry_ms is
--   how long until the next lease expires (-1: none), more is 1 when jobs were handed out and
--   ready ones are left behind them, and died a flat array of pairs {id, outcome} of the jobs
--   this call sent to the dead set (stalled, or buried). The attempt is 1 on the first run.
-- Invariants: a fetched job is in active only, its meta says active with the new token; a job
--   that cannot run (no meta, an unreadable meta, no payload) goes to the dead set instead
--   (bury), so one bad record never holds up the good ones; when nothing is ready the wake
--   tokens are cleared, so an idle worker blocks instead of spinning.
-- Limits (01_limits.lua): a job that names limiters starts only when they allow it; one that
--   must wait goes to delayed (a rate slot booked for it, or parked for a concurrency slot),
--   spending no attempt, and the call pops other jobs in its place (at most LIMIT_ROUNDS pops).
-- Flags: allow-oom. A full Redis still hands out work, so that workers drain it.
-- Pops per call when jobs wait for limiters: bounds the call's work behind a long run of them.
local LIMIT_ROUNDS = 4

local function fetch(KEYS, ARGV)
  local K = key_table(KEYS)
  K.died = {}
  local now = now_ms()
  local prefix = ARGV[1]
  local n = math.min(tonumber(ARGV[2]), MAX_BATCH)
  local lease, worker, cap = tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[7])
  local events = tonumber(ARGV[10]) or 0
  if events > 0 then K.ev = events end
  promote_due(K, now, tonumber(ARGV[5]), prefix, cap)
  reap_expired(K, now, tonumber(ARGV[6]), prefix, cap)
  if redis.call('HGET', K.cfg, 'paused') == '1' then
    return {{}, -1, 1, -1, 0, K.died}
  end
  local jobs, more = {}, 0
  local L = nil -- the limiters, read only when a job names some
  local wanted, popped_total, rounds = n, 0, 0
  local room = tonumber(ARGV[9]) or n -- places for jobs that name limiters
  local deadline = now + lease
  local meta_args, active_args = {}, {}
  -- Jobs that wait for a limiter leave room: pop again for it, a bounded number of times.
  while wanted > 0 and rounds < LIMIT_ROUNDS and popped_total < MAX_BATCH do
    rounds = rounds + 1
    local popped = redis.call('ZPOPMIN', K.ready, math.min(wanted, MAX_BATCH - popped_total))
    local ids = {}
    for i = 1, #popped, 2 do ids[#ids + 1] = popped[i] end
    if #ids == 0 then
      if popped_total == 0 then redis.call('DEL', K.wake) end
      break
    end
    popped_total = popped_total + #ids
    -- One read per key for the whole batch, not one per job.
    local metas = redis.call('HMGET', K.meta, unpack(ids))
    local payloads = redis.call('HMGET', K.jobs, unpack(ids))
    local limited, held_back = 0, false
    for i, id in ipairs(ids) do
      local m = decode_meta(metas[i])
      local why = unusable(m, payloads[i])
      if why then
        bury(K, id, why, now, prefix, cap)
      elseif m.lm and room <= 0 then
        -- No place here to start it at once: back to its place, for a worker that has one.
        redis.call('ZADD', K.ready, m.sc, id)
        held_back = true
      else
        local due, rid, kind = nil, nil, nil
        if m.lm then
          L = L or limit_session(limit_config(ARGV[8]), now)
          due, rid, kind = admit(K, L, id, m)
          if not due then room = room - 1 end
        end
        if due then
          wait_for_limit(K, id, m, due, rid, kind)
          limited = limited + 1
        else
          m.a = m.a + 1
          m.d = m.d + 1
          m.s = 'active'
          m.w = worker
          m.f = now
          m.r = nil
          m.ex = nil
          active_args[#active_args + 1] = deadline
          active_args[#active_args + 1] = id
          jobs[#jobs + 1] = id
          jobs[#jobs + 1] = payloads[i]
          jobs[#jobs + 1] = m.a
          jobs[#jobs + 1] = tostring(m.d)
          if K.ev then emit(K, 'started', id, payload_head(payloads[i]), m.a) end
        end
        meta_args[#meta_args + 1] = id
        meta_args[#meta_args + 1] = cmsgpack.pack(m)
      end
    end
    if limited == 0 or held_back then break end
    wanted = wanted - (#ids - limited)
  end
  if L then limits_flush(K, L) end
  if #meta_args > 0 then redis.call('HSET', K.meta, unpack(meta_args)) end
  if #active_args > 0 then redis.call('ZADD', K.active, unpack(active_args)) end
  -- A worker that leased one job while others wait tells its peers to come and fetch.
  if popped_total > 0 and redis.call('ZCARD', K.ready) > 0 then more = 1 end
  local next_due, next_expiry = -1, -1
  local first = redis.call('ZRANGE', K.delayed, 0, 0, 'WITHSCORES')
  if #first > 0 then next_due = math.max(tonumber(first[2]) - now, 0) end
  local lease_first = redis.call('ZRANGE', K.active, 0, 0, 'WITHSCORES')
  if #lease_first > 0 then next_expiry = math.max(tonumber(lease_first[2]) - now, 0) end
  return {jobs, next_due, 0, next_expiry, more, K.died}
end

redis.register_function{function_name = 'errands_v1_fetch', callback = fetch,
  flags = {'allow-oom'}}
