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
--  13 stats      HASH  counters: enqueued, succeeded, retried, deferred, failed, cancelled,
--                      stalled, lost (leases that expired before a heartbeat saw the job run)
--  14 cancel     SET   ids of running jobs asked to stop
--  15 workers    HASH  worker id -> JSON {seen=ms, ...}
--  16 maint      STRING maintenance lock
--  17 cfg        HASH  queue settings (paused)
--  18 chords     HASH  chord id -> msgpack {r remaining, s size, p callback payload, ...}
--  19 chord_parts HASH "<chord id>:<index>" -> a member's result JSON
--  20 chords_x   ZSET  chord id -> its deadline (ms): members all sent by then (unarmed), or
--                      all reported by then (armed); maintenance fails it after
--  21 chord_fails HASH member job id -> msgpack {c chord, q its queue, o the chord's failed
--                      outcome}: chord members of this queue that ended dead; workers fail their
--                      chords (chord_abort in the chord's queue), then delete the note
--  22 history   HASH  job id -> JSON array of its last HISTORY failed attempts that were retried
--                      or stalled: {a attempt, t ms, w worker, e error}; kept while the job
--                      lives (dead included), deleted with it
--  23 limits    HASH  "<limiter>|<key>" -> msgpack {t GCRA theoretical arrival time ms,
--                      bo backoff until ms, h job ids holding its concurrency slots}: the
--                      state of one limiter (limits.lua); a record with nothing to remember
--                      expires (limits_x)
--  24 limits_x  ZSET  "<limiter>|<key>" -> when its record holds nothing any more (ms)
--  25 limit_wait ZSET "<limiter>|<key>|<sequence>|<job id>" -> 0: jobs parked in delayed until
--                      a concurrency slot of that limiter frees (read by lex, oldest first)
--  26 progress  HASH  job id -> JSON {p fraction, m message, d data, t ms} the task reported;
--                      deleted with the job
--  27 events    STREAM job events, capped (MAXLEN ~), written only by calls that say so (an
--                      events cap in ARGV, set as K.ev): fields e event (enqueued, started,
--                      succeeded, retried, deferred, dead, cancelled), j job id, t task ('' if
--                      unknown), a attempt, x error type ('' if none); the entry id is the time
--
-- Each function's header lists the keys it touches, with the helpers below that it calls, one
-- a line: `KEYS[n] suffix (read)`, `(write)` or `(read, write)`. A function reads a key when a
-- command tells it what the key holds (a read command, or a write whose reply it uses: INCR's
-- value, ZPOPMIN's members, whether ZREM or HSETNX changed anything), and writes it when a
-- command changes it. "Outside KEYS" names the result channel, ARGV[1] .. job id, where it
-- publishes an outcome it stores (none for a job that ignores its result).
-- tests/unit/test_lua_headers.py checks every list against the code.
--
-- meta fields: s state (queued|scheduled|active|dead), a attempts charged, m max attempts,
-- p priority, sc ready score, st stalls, xs max stalls, d deliveries (the lease token),
-- r 1 once a heartbeat saw this delivery running, lo leases lost before any heartbeat saw them
-- running, ex 1 while it waits in ready after its lease expired (nobody took it since), ik/im idempotency key and mode (w window, u until finished), rt result ttl ms,
-- ir ignore result (1/0), w worker holding the lease, ch/cq/ci the chord, its queue and the
-- member's index (chord members only), h 1 once it has a history entry; a dead job also has
-- t its task, et and em the type and message of its error (set by to_dead, for dead pages).
--
-- Invariant: a job id with meta is in exactly one of ready, delayed, active, dead; a finished
-- job has no meta and no payload, only (unless ignored) a result that expires. A record that
-- breaks it (an id without meta or payload, a meta that does not decode) goes to the dead set
-- with the reason, never silently away (bury).
--
-- No call writes before it has checked what could stop it halfway: batches are bounded by
-- MAX_BATCH (so every unpack stays under Lua's limit of about 8,000 values) and every decode
-- of a stored record is guarded, so an error reply means nothing was written.

local PRIORITY_SPAN = 17592186044416 -- 2^44: sequence numbers stay below this
local MAX_BATCH = 1000
-- Leases that expire before any heartbeat saw the job run are not charged as stalls (its
-- worker died with it queued), but a job that keeps killing its worker before the first
-- heartbeat is poison too: it ends dead after this many such losses beyond its max stalls.
local LOST_SPARE = 5
local BURIED_TTL_MS = 7 * 86400000 -- how long the outcome of a buried record is kept
-- Failed attempts kept per job, and characters of each traceback kept (its end): bounds on
-- the memory of a job that keeps failing. errands.broker.views.HISTORY and HISTORY_TRACEBACK.
local HISTORY = 5
local HISTORY_TRACEBACK = 4000
-- Characters of a dead job's error message kept in its meta, for dead pages.
local DEAD_MESSAGE = 300

local function key_table(KEYS)
  return {
    ready = KEYS[1], delayed = KEYS[2], active = KEYS[3], dead = KEYS[4],
    jobs = KEYS[5], meta = KEYS[6], results = KEYS[7], results_x = KEYS[8],
    idem = KEYS[9], idem_x = KEYS[10], wake = KEYS[11], seq = KEYS[12],
    stats = KEYS[13], cancel = KEYS[14], workers = KEYS[15], maint = KEYS[16], cfg = KEYS[17],
    chords = KEYS[18], chord_parts = KEYS[19], chords_x = KEYS[20], chord_fails = KEYS[21],
    history = KEYS[22], limits = KEYS[23], limits_x = KEYS[24], limit_wait = KEYS[25],
    progress = KEYS[26], events = KEYS[27],
  }
end

local function too_many(what, n)
  return redis.error_reply('ERR errands: at most ' .. MAX_BATCH .. ' ' .. what ..
    ' per call, not ' .. tostring(n) .. ' (the client sends bigger batches in several calls)')
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- A stored meta, decoded and checked: nil when there is none, false when it cannot be used.
-- Every field a function computes with is checked, so no later step can fail on it.
local function decode_meta(raw)
  if not raw then return nil end
  local ok, m = pcall(cmsgpack.unpack, raw)
  if not ok or type(m) ~= 'table' or type(m.s) ~= 'string' or type(m.a) ~= 'number'
      or type(m.m) ~= 'number' or type(m.d) ~= 'number' or type(m.p) ~= 'number'
      or type(m.st) ~= 'number' or type(m.xs) ~= 'number' or type(m.rt) ~= 'number'
      or type(m.sc) ~= 'number' or (m.ch ~= nil and type(m.ch) ~= 'string')
      or (m.lm ~= nil and type(m.lm) ~= 'table') or (m.rl ~= nil and type(m.rl) ~= 'number') then
    return false
  end
  return m
end

-- Whether a worker's record (its decoded info) is live at `now`: heard from within its own
-- lease (it beats every lease/3, so a lease without a beat means it is gone), or within
-- `silence` ms for a record that names no lease.
local function worker_live(info, now, silence)
  if type(info) ~= 'table' then return false end
  local window = tonumber(info.lease) or silence
  return (tonumber(info.seen) or 0) >= now - window
end

local function get_meta(K, id)
  return decode_meta(redis.call('HGET', K.meta, id))
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

-- Delete up to n entries of an expiring hash (results, idem) whose time is up. A call that adds
-- k entries removes up to 2k: the hash shrinks back after a burst instead of growing with the
-- rate, and maintenance only has to catch what nobody writes behind.
local function expire_some(hash, index, now, n)
  if n <= 0 then return 0 end
  local old = redis.call('ZRANGE', index, '-inf', now, 'BYSCORE', 'LIMIT', 0, n)
  if #old > 0 then
    redis.call('HDEL', hash, unpack(old))
    redis.call('ZREM', index, unpack(old))
  end
  return #old
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
  m.r = nil
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

-- The task name and enqueue time at the head of a payload: errands.message.JobRecord encodes
-- {"id":..,"task":..,"queue":..,["priority":n,]"enqueued_at":t,..} in this order, before the
-- arguments, so this never reads them. nil for a head in another form (written by hand).
local function payload_head(payload)
  if not payload then return nil, nil end
  local _, e, task = string.find(payload,
    '^{"id":"[^"\\]*","task":"([^"\\]*)","queue":"[^"\\]*",')
  if not e then return nil, nil end
  local _, pe = string.find(payload, '^"priority":%d+,', e + 1)
  local _, _, at = string.find(payload, '^"enqueued_at":([-%d%.eE+]+)', (pe or e) + 1)
  return task, tonumber(at)
end

-- The error of an outcome JSON (a table with type and message), or nil.
local function outcome_error(outcome)
  local ok, d = pcall(cjson.decode, outcome)
  if ok and type(d) == 'table' and type(d.error) == 'table' then return d.error end
  return nil
end

-- Keep the error of an attempt that failed and runs again (the last HISTORY of them). The
-- caller writes `m` after (this sets m.h).
local function note_attempt(K, id, m, attempt, err, now)
  local raw = redis.call('HGET', K.history, id)
  local ok, list = false, nil
  if raw then ok, list = pcall(cjson.decode, raw) end
  if not ok or type(list) ~= 'table' then list = {} end
  if type(err) ~= 'table' then err = {type = 'unknown', message = 'no error was recorded'} end
  if type(err.traceback) == 'string' and #err.traceback > HISTORY_TRACEBACK then
    err.traceback = string.sub(err.traceback, -HISTORY_TRACEBACK)
  end
  list[#list + 1] = {a = attempt, t = now, w = m.w, e = err}
  while #list > HISTORY do table.remove(list, 1) end
  redis.call('HSET', K.history, id, cjson.encode(list))
  m.h = 1
end

local function forget_history(K, id, m)
  if m.h == 1 then redis.call('HDEL', K.history, id) end
end

-- Record an outcome that waiters can read and wake on; returns 1 when one was stored.
local function store_result(K, id, m, outcome, now, channel_prefix)
  if m.ir ~= 1 then
    redis.call('HSET', K.results, id, outcome)
    redis.call('ZADD', K.results_x, now + (m.rt or BURIED_TTL_MS), id)
    redis.call('PUBLISH', channel_prefix .. id, outcome)
    return 1
  end
  return 0
end

-- A job ends for good (succeeded, cancelled): its payload and meta go, its result stays a while.
local function finish(K, id, m, outcome, now, channel_prefix)
  local stored = store_result(K, id, m, outcome, now, channel_prefix)
  release_idem(K, id, m)
  redis.call('HDEL', K.jobs, id)
  redis.call('HDEL', K.progress, id)
  redis.call('HDEL', K.meta, id)
  redis.call('SREM', K.cancel, id)
  forget_history(K, id, m)
  -- A job cancelled while it waited for a concurrency slot is no longer listed as waiting.
  if m.lw then redis.call('ZREM', K.limit_wait, m.lw) end
  return stored
end

-- Drop dead jobs beyond the cap, oldest first; bounded by the excess, at most MAX_BATCH.
local function trim_dead(K, cap)
  local excess = redis.call('ZCARD', K.dead) - cap
  if excess <= 0 then return 0 end
  local gone = redis.call('ZPOPMIN', K.dead, math.min(excess, MAX_BATCH))
  for i = 1, #gone, 2 do
    redis.call('HDEL', K.jobs, gone[i])
    redis.call('HDEL', K.meta, gone[i])
    redis.call('HDEL', K.history, gone[i])
    redis.call('HDEL', K.progress, gone[i])
  end
  return #gone / 2
end

local function failed_outcome(kind, message, attempts, now, deliveries)
  return cjson.encode({
    state = 'failed',
    attempts = attempts,
    deliveries = deliveries,
    finished_at = now / 1000,
    error = {type = 'errands.errors.' .. kind, message = message},
  })
end

-- The outcome of a chord whose member `id` ended dead with `outcome`: it names the member, and
-- the member's error and traceback.
local function chord_failure(chord, id, outcome, now)
  local ok, d = pcall(cjson.decode, outcome)
  local err = ok and type(d) == 'table' and type(d.error) == 'table' and d.error or {}
  local cause = tostring(err.type or 'unknown') .. ': ' .. tostring(err.message or 'no error recorded')
  return cjson.encode({
    state = 'failed',
    finished_at = now / 1000,
    error = {
      type = 'errands.errors.ChordFailed',
      message = 'chord ' .. chord .. ' will not call back: member ' .. id .. ' failed with ' ..
        cause,
      traceback = type(err.traceback) == 'string' and err.traceback or nil,
    },
  })
end

-- Append a job event to the queue's stream; callers check K.ev (the cap) first, so a call
-- without events pays one branch.
local function emit(K, event, id, task, attempt, err_type)
  redis.call('XADD', K.events, 'MAXLEN', '~', K.ev, '*', 'e', event, 'j', id, 't', task or '',
    'a', attempt or 0, 'x', err_type or '')
end

-- A job goes to the dead set with its outcome kept as its result, so waiters see the failure.
-- A chord member leaves a note in chord_fails: a worker fails its chord (workers read them).
local function to_dead(K, id, m, outcome, now, channel_prefix, cap)
  m.s = 'dead'
  m.w = nil
  m.r = nil
  -- What a page of dead jobs shows, kept here: the outcome expires before the dead job does.
  m.t = payload_head(redis.call('HGET', K.jobs, id))
  local err = outcome_error(outcome)
  if err then
    m.et = tostring(err.type or '')
    m.em = string.sub(tostring(err.message or ''), 1, DEAD_MESSAGE)
  end
  put_meta(K, id, m)
  redis.call('ZADD', K.dead, now, id)
  if K.ev then emit(K, 'dead', id, m.t, m.a, m.et) end
  store_result(K, id, m, outcome, now, channel_prefix)
  release_idem(K, id, m)
  redis.call('SREM', K.cancel, id)
  redis.call('HINCRBY', K.stats, 'failed', 1)
  if K.died then -- a call that reports the jobs it killed (fetch, maintain): this is one
    K.died[#K.died + 1] = id
    K.died[#K.died + 1] = outcome
  end
  if m.ch then
    redis.call('HSET', K.chord_fails, id,
      cmsgpack.pack({c = m.ch, q = m.cq, o = chord_failure(m.ch, id, outcome, now)}))
  end
  trim_dead(K, cap)
end

-- A record that breaks the invariant (no meta, a meta that does not decode, no payload) goes
-- to the dead set under a fresh meta, its outcome saying what was wrong, so that an operator
-- sees it (errands dead list) and can purge it, or redrive it once its payload is back.
-- The caller has taken `id` out of the set it was in.
local function bury(K, id, why, now, channel_prefix, cap)
  local m = {s = 'dead', a = 0, m = 1, p = 0, sc = 0, st = 0, xs = 0, d = 0,
    rt = BURIED_TTL_MS, ir = 0}
  local outcome = failed_outcome('CorruptJob', 'job ' .. id .. ' cannot run: ' .. why ..
    '; errands dead list shows it, errands dead purge deletes it', 0, now, 0)
  to_dead(K, id, m, outcome, now, channel_prefix, cap)
end

-- Why a job taken from one of the sets cannot go on (nil: it can): its meta, its payload.
local function unusable(m, has_payload)
  if m == nil then return 'its meta is missing (deleted by hand, or lost by the server)' end
  if m == false then return 'its meta cannot be read (written by something else?)' end
  if not has_payload then return 'its payload is missing (deleted by hand, or lost)' end
  return nil
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
