-- The operator's read model (errands.broker.redis.inspector): read-only views, each bounded
-- whatever the size of the queue (flag no-writes, called with FCALL_RO: a replica may serve).
-- KEYS: the queue's standard key list (00_shared.lua), of which each touches the ones listed in
--   its section.
--
-- errands_v1_queue_view: a queue at a glance.
-- KEYS it touches (of the queue's standard key list):
--   KEYS[1] ready (read)
--   KEYS[2] delayed (read)
--   KEYS[3] active (read)
--   KEYS[4] dead (read)
--   KEYS[5] jobs (read)
--   KEYS[13] stats (read)
--   KEYS[15] workers (read)
--   KEYS[17] cfg (read)
-- ARGV: [1] worker silence ms (a worker not heard from for this long is
--   not counted).
-- Returns: {ready, delayed, active, dead, paused (0|1), stats as a flat field/value array,
--   enqueue time of the oldest ready job (seconds, a string) or false, live consumers, now ms}.
--   The oldest ready job is the oldest of the first job of each priority: at most 10 reads.
--
-- errands_v1_job_view: one job's whole record.
-- KEYS it touches (of the queue's standard key list):
--   KEYS[2] delayed (read)
--   KEYS[3] active (read)
--   KEYS[4] dead (read)
--   KEYS[5] jobs (read)
--   KEYS[6] meta (read)
--   KEYS[7] results (read)
--   KEYS[8] results_x (read)
--   KEYS[18] chords (read)
--   KEYS[22] history (read)
--   KEYS[26] progress (read)
-- ARGV: [1] job id.
-- Returns: {state, outcome or false, attempts (as errands_v1_result), meta (msgpack) or false,
--   payload or false, history JSON or false, delayed due ms or false, lease deadline ms or
--   false, time of death ms or false, progress JSON or false}.
--
-- errands_v1_dead_page: a page of dead jobs.
-- KEYS it touches (of the queue's standard key list):
--   KEYS[4] dead (read)
--   KEYS[5] jobs (read)
--   KEYS[6] meta (read)
--   KEYS[7] results (read)
-- ARGV: [1] 'asc' (oldest first) or 'desc', [2] the cursor's score ('-inf'
--   or '+inf' to start), [3] entries at that score already seen (skipped), [4] the other end
--   of the time range (ms, or '+inf' / '-inf'), [5] page size (<= 1000), [6] entries to look at
--   (<= 1000), [7] task ('' any), [8] error type ('' any: the full name, or its last part).
-- Returns: {entries as a flat array of 6-tuples {id, time of death ms, task, attempts, error
--   type, error message}, next cursor score or false (no more), entries at it seen}.
--   The cost is bounded by ARGV[6] (plus the entries skipped at the cursor's score), never by
--   the size of the dead set.
--
-- errands_v1_workers_view: a page of the live workers serving the queue.
-- KEYS it touches (of the queue's standard key list):
--   KEYS[15] workers (read)
-- ARGV: [1] worker silence ms, [2] after this worker id ('' from the
--   start), [3] page size (<= 1000).
-- Returns: {flat id/info JSON pairs of live workers in id order, more (0|1), now ms}. The
--   worker list holds one entry per worker serving the queue: it is as long as the fleet.

-- Live workers (worker_live): {id, info JSON} pairs, sorted by id.
local function live_workers(K, silence, now)
  local all = redis.call('HGETALL', K.workers)
  local live = {}
  for i = 1, #all, 2 do
    local ok, info = pcall(cjson.decode, all[i + 1])
    if ok and worker_live(info, now, silence) then
      live[#live + 1] = {all[i], all[i + 1]}
    end
  end
  table.sort(live, function(x, y) return x[1] < y[1] end)
  return live
end

local function oldest_ready(K)
  local oldest = nil
  local from = 0
  for _ = 1, 10 do
    local first = redis.call('ZRANGE', K.ready, from, '+inf', 'BYSCORE', 'LIMIT', 0, 1,
      'WITHSCORES')
    if #first == 0 then break end
    local _, at = payload_head(redis.call('HGET', K.jobs, first[1]))
    if at and (oldest == nil or at < oldest) then oldest = at end
    from = (math.floor(tonumber(first[2]) / PRIORITY_SPAN) + 1) * PRIORITY_SPAN
  end
  return oldest
end

local function queue_view(KEYS, ARGV)
  local K = key_table(KEYS)
  local now = now_ms()
  local oldest = oldest_ready(K)
  return {
    redis.call('ZCARD', K.ready), redis.call('ZCARD', K.delayed),
    redis.call('ZCARD', K.active), redis.call('ZCARD', K.dead),
    redis.call('HGET', K.cfg, 'paused') == '1' and 1 or 0,
    redis.call('HGETALL', K.stats),
    oldest and string.format('%.3f', oldest) or false,
    #live_workers(K, tonumber(ARGV[1]), now),
    now,
  }
end

local function job_view(KEYS, ARGV)
  local K = key_table(KEYS)
  local id = ARGV[1]
  local state = state_of(K, id)
  return {
    state[1], state[2], state[3],
    redis.call('HGET', K.meta, id) or false,
    redis.call('HGET', K.jobs, id) or false,
    redis.call('HGET', K.history, id) or false,
    redis.call('ZSCORE', K.delayed, id) or false,
    redis.call('ZSCORE', K.active, id) or false,
    redis.call('ZSCORE', K.dead, id) or false,
    redis.call('HGET', K.progress, id) or false,
  }
end

-- Whether error type `kind` is `wanted`: the same name, or `wanted` is its last part.
local function error_matches(kind, wanted)
  if wanted == '' or kind == wanted then return true end
  local n = #wanted + 1
  return #kind > n and string.sub(kind, -n) == '.' .. wanted
end

local function dead_page(KEYS, ARGV)
  local K = key_table(KEYS)
  local desc = ARGV[1] == 'desc'
  local from, skip, to = ARGV[2], tonumber(ARGV[3]), ARGV[4]
  local size, scan = math.min(tonumber(ARGV[5]), MAX_BATCH), math.min(tonumber(ARGV[6]), MAX_BATCH)
  local task, kind = ARGV[7], ARGV[8]
  local range
  if desc then
    range = redis.call('ZRANGE', K.dead, from, to, 'BYSCORE', 'REV', 'LIMIT', skip, scan,
      'WITHSCORES')
  else
    range = redis.call('ZRANGE', K.dead, from, to, 'BYSCORE', 'LIMIT', skip, scan, 'WITHSCORES')
  end
  local entries = {}
  local found = 0
  local last, at_last = tonumber(from), skip
  local looked = 0
  local ids = {}
  for i = 1, #range, 2 do ids[#ids + 1] = range[i] end
  local metas = #ids > 0 and redis.call('HMGET', K.meta, unpack(ids)) or {}
  for i, id in ipairs(ids) do
    local score = tonumber(range[2 * i])
    looked = looked + 1
    if score == last then at_last = at_last + 1 else last, at_last = score, 1 end
    -- Only the fields shown are read; a meta that does not decode shows as '?'.
    local ok, m = pcall(cmsgpack.unpack, metas[i] or '')
    if not ok or type(m) ~= 'table' then m = nil end
    local t, et, em, attempts = m and m.t, m and m.et, m and m.em, m and tonumber(m.a) or 0
    if m and not t then t = payload_head(redis.call('HGET', K.jobs, id)) end
    if m and not et then
      local err = outcome_error(redis.call('HGET', K.results, id) or '')
      if err then et, em = tostring(err.type or ''), tostring(err.message or '') end
    end
    t, et, em = tostring(t or '?'), tostring(et or ''), tostring(em or '')
    if (task == '' or t == task) and error_matches(et, kind) then
      entries[#entries + 1] = id
      entries[#entries + 1] = score
      entries[#entries + 1] = t
      entries[#entries + 1] = attempts
      entries[#entries + 1] = et
      entries[#entries + 1] = em
      found = found + 1
      if found >= size then break end
    end
  end
  -- Looked at everything the range had left: no next page.
  if found < size and looked < scan then return {entries, false, 0} end
  if #range == 0 then return {entries, false, 0} end
  return {entries, string.format('%d', last), at_last}
end

local function workers_view(KEYS, ARGV)
  local K = key_table(KEYS)
  local now = now_ms()
  local live = live_workers(K, tonumber(ARGV[1]), now)
  local after, size = ARGV[2], math.min(tonumber(ARGV[3]), MAX_BATCH)
  local page, more = {}, 0
  for _, worker in ipairs(live) do
    if after == '' or worker[1] > after then
      if #page >= 2 * size then
        more = 1
        break
      end
      page[#page + 1] = worker[1]
      page[#page + 1] = worker[2]
    end
  end
  return {page, more, now}
end

redis.register_function{function_name = 'errands_v1_queue_view', callback = queue_view,
  flags = {'no-writes'}}
redis.register_function{function_name = 'errands_v1_job_view', callback = job_view,
  flags = {'no-writes'}}
redis.register_function{function_name = 'errands_v1_dead_page', callback = dead_page,
  flags = {'no-writes'}}
redis.register_function{function_name = 'errands_v1_workers_view', callback = workers_view,
  flags = {'no-writes'}}
