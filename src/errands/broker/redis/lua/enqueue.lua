-- errands_v1_enqueue: add a batch of jobs to one queue.
-- KEYS: the queue's standard key list (00_shared.lua), of which it touches:
--   KEYS[1] ready (write)
--   KEYS[2] delayed (write)
--   KEYS[5] jobs (write)
--   KEYS[6] meta (read, write)
--   KEYS[7] results (read)
--   KEYS[9] idem (read, write)
--   KEYS[10] idem_x (read, write)
--   KEYS[11] wake (write)
--   KEYS[12] seq (read, write)
--   KEYS[13] stats (write)
--   KEYS[27] events (write)
-- ARGV: [1] result channel prefix (unused here, for a uniform call), [2] n (<= 1000; the
--   client sends more in several calls), then n records of
--   7 fields: id, payload, meta, priority (0-9), delay_ms (0 = ready now), idempotency key
--   ('' = none), idempotency ttl ms; then the events cap (0: no event; else an 'enqueued'
--   event per new job, 00_shared.lua).
--   meta is the new job's meta map (00_shared.lua) in msgpack, built by the client, all but the
--   value of its last key: its header counts `sc` and its bytes end with the key "sc". The ready
--   score needs the queue's sequence number, so this function appends only that value. The
--   client packs the map (cached, for jobs of one task alike) so that Redis, which runs one call
--   at a time for every client and worker, builds and packs no table per job
--   (docs/performance.md).
-- Returns: a flat array of n pairs {job id, code}; code 1 = enqueued, 0 = duplicate (the id is the
--   existing job's: same id already known, or same idempotency key inside its window).
-- Invariants: a new job is in exactly one of ready or delayed; at most one live job per key;
--   a call that holds k idempotency keys deletes up to 2k expired ones (expire_some).
-- Flags: none, so a full Redis (maxmemory) refuses it with OOM before it writes anything: new
--   work is what a full Redis must refuse, while workers keep draining it.
--
-- errands_v1_continue: the same, for the next steps of finished jobs (a chain's next step),
--   with allow-oom: each replaces the job that made it, and a full Redis that refused it would
--   hold back that job's ack, and with it the draining.
local FIELDS = 7

-- One job, the common call (delay(), apply_async()): the steps of the batch below without its
-- tables or the key table, since a single enqueue's Redis time is part of the producer's round
-- trip (docs/performance.md). The two must write the same state
-- (tests/integration/test_enqueue_paths.py). KEYS by position, as in key_table.
local function enqueue_one(KEYS, ARGV)
  local id, priority, delay, ikey = ARGV[3], tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
  local meta_key = KEYS[6]
  if redis.call('HEXISTS', meta_key, id) == 1 or redis.call('HEXISTS', KEYS[7], id) == 1 then
    return {id, 0}
  end
  local now = 0
  if ikey ~= '' or delay > 0 then now = now_ms() end
  if ikey ~= '' then
    local holder = key_holder(KEYS[9], KEYS[10], ikey, now)
    if holder then return {holder, 0} end
    expire_some(KEYS[9], KEYS[10], now, 2)
    hold_key(KEYS[9], KEYS[10], ikey, id, now + tonumber(ARGV[9]))
  end
  local score = 0
  if delay > 0 then
    redis.call('ZADD', KEYS[2], now + delay, id)
  else
    score = score_of(priority, redis.call('INCR', KEYS[12]))
    redis.call('ZADD', KEYS[1], score, id)
  end
  redis.call('HSET', KEYS[5], id, ARGV[4])
  redis.call('HSET', meta_key, id, ARGV[5] .. cmsgpack.pack(score))
  redis.call('HINCRBY', KEYS[13], 'enqueued', 1)
  arm_wake(KEYS[11], 1)
  if ARGV[10] ~= '0' then
    redis.call('XADD', KEYS[27], 'MAXLEN', '~', ARGV[10], '*', 'e', 'enqueued', 'j', id,
      't', payload_head(ARGV[4]) or '', 'a', 0, 'x', '')
  end
  return {id, 1}
end

local function enqueue(KEYS, ARGV)
  if ARGV[2] == '1' then return enqueue_one(KEYS, ARGV) end
  local K = key_table(KEYS)
  local n = tonumber(ARGV[2])
  if n == 0 then return {} end
  if n > MAX_BATCH then return too_many('jobs', n) end
  local cap = tonumber(ARGV[3 + n * FIELDS]) or 0
  if cap > 0 then K.ev = cap end
  -- The clock is read only when a job needs it (a delay, an idempotency key).
  local now = 0
  for i = 0, n - 1 do
    local b = 2 + i * FIELDS
    if ARGV[b + 6] ~= '' or tonumber(ARGV[b + 5]) > 0 then
      now = now_ms()
      break
    end
  end
  local ids = {}
  for i = 0, n - 1 do ids[i + 1] = ARGV[2 + i * FIELDS + 1] end
  local known_meta = redis.call('HMGET', K.meta, unpack(ids))
  local known_result = redis.call('HMGET', K.results, unpack(ids))
  -- First pass: which jobs are new (a batch may repeat an id or a key: the first one wins).
  local out, new, seen_id, seen_key = {}, {}, {}, {}
  local ready_count = 0
  for i = 0, n - 1 do
    local b = 2 + i * FIELDS
    local id, ikey = ARGV[b + 1], ARGV[b + 6]
    local existing = nil
    if known_meta[i + 1] or known_result[i + 1] or seen_id[id] then
      existing = id
    elseif ikey ~= '' then
      existing = seen_key[ikey] or key_holder(K.idem, K.idem_x, ikey, now)
    end
    out[#out + 1] = existing or id
    out[#out + 1] = existing and 0 or 1
    if not existing then
      seen_id[id] = true
      if ikey ~= '' then seen_key[ikey] = id end
      new[#new + 1] = b
      if tonumber(ARGV[b + 5]) <= 0 then ready_count = ready_count + 1 end
    end
  end
  if #new == 0 then return out end
  -- Second pass: one write per key for the whole batch; sequence numbers taken in one step.
  local seq = 0
  if ready_count > 0 then seq = redis.call('INCRBY', K.seq, ready_count) - ready_count end
  local payloads, metas, ready, delayed = {}, {}, {}, {}
  local keys_held = 0
  for _, b in ipairs(new) do
    if ARGV[b + 6] ~= '' then keys_held = keys_held + 1 end
  end
  expire_some(K.idem, K.idem_x, now, 2 * keys_held)
  for _, b in ipairs(new) do
    local id, priority, delay = ARGV[b + 1], tonumber(ARGV[b + 4]), tonumber(ARGV[b + 5])
    local ikey = ARGV[b + 6]
    local score = 0
    if ikey ~= '' then hold_key(K.idem, K.idem_x, ikey, id, now + tonumber(ARGV[b + 7])) end
    if delay > 0 then
      delayed[#delayed + 1] = now + delay
      delayed[#delayed + 1] = id
    else
      seq = seq + 1
      score = score_of(priority, seq)
      ready[#ready + 1] = score
      ready[#ready + 1] = id
    end
    payloads[#payloads + 1] = id
    payloads[#payloads + 1] = ARGV[b + 2]
    metas[#metas + 1] = id
    metas[#metas + 1] = ARGV[b + 3] .. cmsgpack.pack(score)
  end
  redis.call('HSET', K.jobs, unpack(payloads))
  redis.call('HSET', K.meta, unpack(metas))
  if #ready > 0 then redis.call('ZADD', K.ready, unpack(ready)) end
  if #delayed > 0 then redis.call('ZADD', K.delayed, unpack(delayed)) end
  redis.call('HINCRBY', K.stats, 'enqueued', #new)
  if K.ev then
    for _, b in ipairs(new) do emit(K, 'enqueued', ARGV[b + 1], payload_head(ARGV[b + 2]), 0) end
  end
  -- Delayed jobs arm it too: an idle worker wakes, learns when they fall due, and sleeps.
  arm_wake(K.wake, #new)
  return out
end

redis.register_function('errands_v1_enqueue', enqueue)
redis.register_function{function_name = 'errands_v1_continue', callback = enqueue,
  flags = {'allow-oom'}}
