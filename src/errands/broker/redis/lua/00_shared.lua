-- Shared helpers for every errands function. Loaded first; the functions below close over them.
--
-- KEYS layout (the same for every function, built by errands/broker/redis/keys.py; one queue,
-- every key shares the queue's hash tag, so each call stays inside one Cluster slot):
--   1 ready      ZSET  job id -> score from (priority, sequence); ZPOPMIN gives the next job
--   2 delayed    ZSET  job id -> due time (ms)
--   3 active     ZSET  job id -> lease deadline (ms)
--   4 dead       ZSET  job id -> time of death (ms)
--   5 jobs       HASH  job id -> payload (opaque to Lua)
--   6 meta       HASH  job id -> msgpack map of the small mutable state (see below)
--   7 results    HASH  job id -> outcome JSON
--   8 results_x  ZSET  job id -> expiry (ms) of its result
--   9 idem       HASH  idempotency key -> job id
--  10 idem_x     ZSET  idempotency key -> expiry (ms)
--  11 wake       ZSET  tokens idle workers block on with BZPOPMIN
--  12 seq        STRING counter giving FIFO order inside a priority
--  13 stats      HASH  counters: enqueued, succeeded, retried, failed, cancelled, stalled
--  14 cancel     SET   ids of running jobs asked to stop
--  15 workers    HASH  worker id -> JSON {seen=ms, ...}
--  16 maint      STRING maintenance lock
--  17 cfg        HASH  queue settings (paused)
--  18 chords     HASH  chord id -> msgpack {r remaining, s size, p callback payload, ...}
--  19 chord_parts HASH "<chord id>:<index>" -> a member's result JSON
--  20 chords_x   ZSET  chord id -> time it started (maintenance drops chords older than dead age)
--
-- meta fields: s state (queued|scheduled|active|dead), a attempts charged, m max attempts,
-- p priority, sc ready score, st stalls, xs max stalls, d deliveries (the lease token),
-- ik/im idempotency key and mode (w window, u until finished), rt result ttl ms,
-- ir ignore result (1/0), w worker holding the lease.
--
-- Invariant: a job id with meta is in exactly one of ready, delayed, active, dead; a finished
-- job has no meta and no payload, only (unless ignored) a result that expires.

local PRIORITY_SPAN = 17592186044416 -- 2^44: sequence numbers stay below this
local MAX_BATCH = 1000

local function key_table(KEYS)
  return {
    ready = KEYS[1], delayed = KEYS[2], active = KEYS[3], dead = KEYS[4],
    jobs = KEYS[5], meta = KEYS[6], results = KEYS[7], results_x = KEYS[8],
    idem = KEYS[9], idem_x = KEYS[10], wake = KEYS[11], seq = KEYS[12],
    stats = KEYS[13], cancel = KEYS[14], workers = KEYS[15], maint = KEYS[16], cfg = KEYS[17],
    chords = KEYS[18], chord_parts = KEYS[19], chords_x = KEYS[20],
  }
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function get_meta(K, id)
  local raw = redis.call('HGET', K.meta, id)
  if not raw then return nil end
  return cmsgpack.unpack(raw)
end

local function put_meta(K, id, m)
  redis.call('HSET', K.meta, id, cmsgpack.pack(m))
end

-- Where a job sorts in ready: by priority (9 first), then by its sequence number (FIFO).
local function score_of(priority, seq)
  return (9 - priority) * PRIORITY_SPAN + seq
end

local function ready_score(K, priority)
  return score_of(priority, redis.call('INCR', K.seq))
end

-- The job holding an idempotency key while its window is open, else nil.
local function key_holder(idem, idem_x, ikey, now)
  local holder = redis.call('HGET', idem, ikey)
  if holder and tonumber(redis.call('ZSCORE', idem_x, ikey) or 0) > now then return holder end
  return nil
end

-- Give an idempotency key to a new job until `expires` (ms).
local function hold_key(idem, idem_x, ikey, id, expires)
  redis.call('HSET', idem, ikey, id)
  redis.call('ZADD', idem_x, expires, ikey)
end

local function arm_wake(wake_key, n)
  -- One token per job up to a few, so that several idle workers wake for a batch.
  if n == 1 then
    redis.call('ZADD', wake_key, 0, '1')
    return
  end
  local tokens = math.min(n, 8)
  local args = {}
  for i = 1, tokens do
    args[#args + 1] = 0
    args[#args + 1] = tostring(i)
  end
  if tokens > 0 then redis.call('ZADD', wake_key, unpack(args)) end
end

local function to_ready(K, id, m, score)
  m.s = 'queued'
  m.w = nil
  m.sc = score
  redis.call('ZADD', K.ready, score, id)
  put_meta(K, id, m)
end

-- Drop the idempotency record of a job that ends, in until-finished mode.
local function release_idem(K, id, m)
  if m.ik and m.im == 'u' then
    if redis.call('HGET', K.idem, m.ik) == id then
      redis.call('HDEL', K.idem, m.ik)
      redis.call('ZREM', K.idem_x, m.ik)
    end
  end
end

-- Record an outcome that waiters can read and wake on.
local function store_result(K, id, m, outcome, now, channel_prefix)
  if m.ir ~= 1 then
    redis.call('HSET', K.results, id, outcome)
    redis.call('ZADD', K.results_x, now + m.rt, id)
    redis.call('PUBLISH', channel_prefix .. id, outcome)
  end
end

-- A job ends for good (succeeded, cancelled): its payload and meta go, its result stays a while.
local function finish(K, id, m, outcome, now, channel_prefix)
  store_result(K, id, m, outcome, now, channel_prefix)
  release_idem(K, id, m)
  redis.call('HDEL', K.jobs, id)
  redis.call('HDEL', K.meta, id)
  redis.call('SREM', K.cancel, id)
end

-- Drop dead jobs beyond the cap, oldest first; bounded by the excess, at most MAX_BATCH.
local function trim_dead(K, cap)
  local excess = redis.call('ZCARD', K.dead) - cap
  if excess <= 0 then return 0 end
  local gone = redis.call('ZPOPMIN', K.dead, math.min(excess, MAX_BATCH))
  for i = 1, #gone, 2 do
    redis.call('HDEL', K.jobs, gone[i])
    redis.call('HDEL', K.meta, gone[i])
  end
  return #gone / 2
end

-- A job goes to the dead set with its outcome kept as its result, so waiters see the failure.
local function to_dead(K, id, m, outcome, now, channel_prefix, cap)
  m.s = 'dead'
  m.w = nil
  put_meta(K, id, m)
  redis.call('ZADD', K.dead, now, id)
  store_result(K, id, m, outcome, now, channel_prefix)
  release_idem(K, id, m)
  redis.call('SREM', K.cancel, id)
  redis.call('HINCRBY', K.stats, 'failed', 1)
  trim_dead(K, cap)
end

-- Move due delayed jobs to ready, FIFO by due time inside their priority. Bounded by limit.
local function promote_due(K, now, limit)
  local due = redis.call('ZRANGE', K.delayed, '-inf', now, 'BYSCORE', 'LIMIT', 0, limit)
  for _, id in ipairs(due) do
    local m = get_meta(K, id)
    if m then to_ready(K, id, m, ready_score(K, m.p)) end
  end
  if #due > 0 then
    redis.call('ZREM', K.delayed, unpack(due))
    arm_wake(K.wake, #due)
  end
  return #due
end

local function stalled_outcome(m)
  return cjson.encode({
    state = 'failed',
    attempts = m.a,
    error = {
      type = 'errands.errors.JobStalled',
      message = 'the lease of this job expired ' .. m.st .. ' times (max_stalls=' .. m.xs ..
        '): a worker holding it died or lost Redis each time; it may be killing workers',
    },
  })
end

-- Give expired leases back: the job returns to its original place in ready, or, once it has
-- stalled more than its max_stalls, goes to the dead set. Bounded by limit.
local function reap_expired(K, now, limit, channel_prefix, dead_cap)
  local expired = redis.call('ZRANGE', K.active, '-inf', now, 'BYSCORE', 'LIMIT', 0, limit)
  local requeued = 0
  for _, id in ipairs(expired) do
    local m = get_meta(K, id)
    if m then
      m.st = (m.st or 0) + 1
      m.a = math.max((m.a or 1) - 1, 0)
      redis.call('HINCRBY', K.stats, 'stalled', 1)
      if redis.call('SISMEMBER', K.cancel, id) == 1 then
        -- Asked to stop, and its worker is gone: it ends cancelled instead of running again.
        finish(K, id, m, cjson.encode({state = 'cancelled', attempts = m.a}), now, channel_prefix)
        redis.call('HINCRBY', K.stats, 'cancelled', 1)
      elseif m.st > m.xs then
        to_dead(K, id, m, stalled_outcome(m), now, channel_prefix, dead_cap)
      else
        to_ready(K, id, m, m.sc)
        requeued = requeued + 1
      end
    end
  end
  if #expired > 0 then
    redis.call('ZREM', K.active, unpack(expired))
    arm_wake(K.wake, requeued)
  end
  return #expired
end

-- Delete the member results of a chord (bounded by its size).
local function drop_parts(K, id, size)
  local fields = {}
  for i = 0, size - 1 do fields[#fields + 1] = id .. ':' .. i end
  for start = 1, #fields, 1000 do
    redis.call('HDEL', K.chord_parts, unpack(fields, start, math.min(start + 999, #fields)))
  end
  return fields
end
