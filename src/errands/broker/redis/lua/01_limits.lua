-- Limiters: rate limits (GCRA) and concurrency caps, checked when fetch hands a job out.
--
-- A job names its limiters in its meta, `lm`: an array of "<limiter>|<key>" (the key is '' for
-- a limiter without one; the client escapes '|' and '%' in keys, so the first '|' ends the
-- name and "<limiter>|<key>|" prefixes only that key's waiters). What each limiter allows comes
-- with the fetch, from the worker's app (ARGV of fetch): a msgpack map
--   limiter -> {t = emission interval ms (nil: no rate), b = burst, c = concurrency (nil: none)}
-- so a restarted or flushed Redis never runs jobs under a stale or missing configuration. A
-- limiter the fetching worker does not know is not applied (its code does not limit the task).
--
-- State, one record per "<limiter>|<key>" in `limits` (msgpack): t the GCRA theoretical
-- arrival time (ms), bo the end of a back-off (RateLimited), h the ids holding its concurrency
-- slots. Jobs carry what they took: lh, the records whose slot they hold (while active only);
-- rv, record -> the time of the rate slot booked for them; lw, their entry in limit_wait while
-- parked; lq 1 while they wait in delayed for a limiter (they return to their place in ready).
--
-- A job over a rate waits in delayed until the slot booked for it (the GCRA time it would be
-- allowed at; booking spends the slot, so n waiting jobs come back one interval apart, each
-- once, never all at the same instant). One over a concurrency cap is parked in delayed and
-- listed in limit_wait; the job that frees a slot makes the oldest waiter of that record due at
-- once. Neither spends an attempt.

-- A booked slot is good for half an interval after its time (at least this long, the time a
-- due job takes to reach a worker): a job that comes back later (its workers were busy) is
-- checked again, booking anew only if the rate is spent. So any window of w ms sees at most
-- w / interval + 1.5 starts (burst 1), however late the jobs that waited come back.
local LIMIT_GRACE_MS = 20
-- A parked job comes back by itself after this long, so a record broken by hand never strands
-- it; checked again, it parks again while the cap is full. Slots freeing wake waiters at once.
local LIMIT_PARK_MS = 300000
-- A record is dropped this long after it last held anything (a past rate time, no back-off, no
-- holders): per-key limiters (one record per tenant) stay bounded by the keys of a day.
local LIMIT_RECORD_MS = 86400000
-- Holders of a slot whose job is no longer active (deleted by hand) are dropped when a cap is
-- full; waiters checked per freed slot, skipping entries of jobs that left (cancelled).
local WAITER_TRIES = 10

local function limiter_of(rid)
  return string.match(rid, '^([^|]*)|')
end

-- The limiter configuration a fetch received (a map), or an empty one.
local function limit_config(raw)
  if not raw or raw == '' then return {} end
  local ok, cfg = pcall(cmsgpack.unpack, raw)
  if not ok or type(cfg) ~= 'table' then return {} end
  return cfg
end

-- The records of one call, read once and written once (L.dirty) by limits_flush.
local function limit_session(cfg, now)
  return {cfg = cfg, now = now, records = {}, dirty = {}, taken = {}}
end

-- A stored limiter record, decoded and checked (t, bo numbers, h a table). One that is
-- missing or does not decode is started afresh: a limiter never stops the queue.
local function read_limit(raw)
  local ok, s = false, nil
  if raw then ok, s = pcall(cmsgpack.unpack, raw) end
  if not ok or type(s) ~= 'table' then s = {} end
  if type(s.t) ~= 'number' then s.t = 0 end
  if type(s.bo) ~= 'number' then s.bo = 0 end
  if type(s.h) ~= 'table' then s.h = {} end
  return s
end

local function limit_record(K, L, rid)
  local s = L.records[rid]
  if s then return s end
  s = read_limit(redis.call('HGET', K.limits, rid))
  L.records[rid] = s
  return s
end

local function limits_flush(K, L)
  local args, expiry = {}, {}
  for rid in pairs(L.dirty) do
    local s = L.records[rid]
    args[#args + 1] = rid
    args[#args + 1] = cmsgpack.pack(s)
    expiry[#expiry + 1] = math.max(s.t, s.bo, L.now) + LIMIT_RECORD_MS
    expiry[#expiry + 1] = rid
  end
  if #args > 0 then
    redis.call('HSET', K.limits, unpack(args))
    redis.call('ZADD', K.limits_x, unpack(expiry))
    expire_some(K.limits, K.limits_x, L.now, #args / 2)
  end
end

-- Drop holders whose job is no longer active (a record or job deleted by hand), so a cap can
-- never be held forever by jobs that are gone; jobs this call admitted count as active.
local function live_holders(K, L, s)
  local kept = {}
  for _, hid in ipairs(s.h) do
    if L.taken[hid] or redis.call('ZSCORE', K.active, hid) then kept[#kept + 1] = hid end
  end
  s.h = kept
end

-- Whether a job may start now. Returns nil when it may (its rate slots and concurrency slots
-- are taken: meta lh, rv updated), or the time it waits until and the record it waits on with
-- the kind ('rate': a slot booked for it at that time; 'cap': parked until a slot frees).
local function admit(K, L, id, m)
  local now, rates, caps = L.now, {}, {}
  for _, rid in ipairs(m.lm) do
    local c = type(rid) == 'string' and L.cfg[limiter_of(rid) or ''] or nil
    if type(c) == 'table' then
      local s = limit_record(K, L, rid)
      if type(c.t) == 'number' and c.t > 0 then
        local booked = type(m.rv) == 'table' and m.rv[rid] or nil
        local good = type(booked) == 'number' and booked >= s.bo
          and now <= booked + math.max(c.t / 2, LIMIT_GRACE_MS)
        if not good then
          local tat = math.max(s.t, now, s.bo + (math.max(c.b or 1, 1) - 1) * c.t)
          local allow_at = tat - (math.max(c.b or 1, 1) - 1) * c.t
          -- TIME stands still inside a call and counts ms: slots inside this ms are now's (a
          -- rate of several per ms admits them together, as they fall in this ms).
          if allow_at >= now + 1 then
            -- Over its rate: book the slot it is allowed at, and wait for it.
            s.t = tat + c.t
            L.dirty[rid] = true
            m.rv = type(m.rv) == 'table' and m.rv or {}
            m.rv[rid] = allow_at
            return allow_at, rid, 'rate'
          end
          rates[#rates + 1] = {s, tat + c.t, rid}
        end
      end
      if type(c.c) == 'number' then
        if #s.h >= c.c then live_holders(K, L, s) end
        if #s.h >= c.c then return now + LIMIT_PARK_MS, rid, 'cap' end
        caps[#caps + 1] = {s, rid}
      end
    end
  end
  for _, r in ipairs(rates) do
    r[1].t = r[2]
    L.dirty[r[3]] = true
  end
  local held = {}
  for _, cap in ipairs(caps) do
    local hs = cap[1].h
    hs[#hs + 1] = id
    L.dirty[cap[2]] = true
    held[#held + 1] = cap[2]
  end
  m.rv = nil
  m.lh = #held > 0 and held or nil
  L.taken[id] = true
  return nil
end

-- Park a job in delayed until `due` (its booked rate slot, or a cap's LIMIT_PARK_MS); a job
-- parked on a cap is listed in limit_wait, oldest first, for the job that frees a slot.
local function wait_for_limit(K, id, m, due, rid, kind)
  m.s = 'scheduled'
  m.w = nil
  m.r = nil
  m.lw = nil
  m.lq = 1
  if kind == 'cap' then
    local member = rid .. '|' .. string.format('%015d', redis.call('INCR', K.seq)) .. '|' .. id
    redis.call('ZADD', K.limit_wait, 0, member)
    m.lw = member
  end
  redis.call('ZADD', K.delayed, due, id)
  redis.call('HINCRBY', K.stats, 'limited', 1)
end

-- A job that comes back from waiting on a cap is no longer listed as waiting.
local function unpark(K, m)
  if type(m.lw) == 'string' then redis.call('ZREM', K.limit_wait, m.lw) end
  m.lw = nil
end

-- Make the oldest job waiting on record `rid` due now (a slot of it freed).
local function wake_waiter(K, rid, now)
  local low, high = '[' .. rid .. '|', '(' .. rid .. '|\255'
  for _ = 1, WAITER_TRIES do
    local first = redis.call('ZRANGE', K.limit_wait, low, high, 'BYLEX', 'LIMIT', 0, 1)
    if #first == 0 then return end
    local member = first[1]
    redis.call('ZREM', K.limit_wait, member)
    local id = string.sub(member, #rid + 18) -- after "<rid>|<15 digits>|"
    local m = get_meta(K, id)
    if m and m.s == 'scheduled' and m.lw == member then
      m.lw = nil
      put_meta(K, id, m)
      redis.call('ZADD', K.delayed, now, id)
      arm_wake(K.wake, 1)
      return
    end
  end
end

-- Note the concurrency slots a job holds as freed (it leaves active), in `freed` (record ->
-- {ids = set, n = count}); free_noted gives them back, one read and write per record. The
-- caller writes `m` after.
local function note_freed(freed, id, m)
  if type(m.lh) == 'table' then
    for _, rid in ipairs(m.lh) do
      if type(rid) == 'string' then
        local f = freed[rid]
        if not f then
          f = {ids = {}, n = 0}
          freed[rid] = f
        end
        f.ids[id] = true
        f.n = f.n + 1
      end
    end
  end
  m.lh = nil
end

-- Give back the slots noted in `freed`: each freed slot wakes one waiter of its record.
local function free_noted(K, freed, now)
  local any_waiting = nil
  for rid, f in pairs(freed) do
    local s = read_limit(redis.call('HGET', K.limits, rid))
    local kept = {}
    for _, hid in ipairs(s.h) do
      if not f.ids[hid] then kept[#kept + 1] = hid end
    end
    s.h = kept
    redis.call('HSET', K.limits, rid, cmsgpack.pack(s))
    if any_waiting == nil then any_waiting = redis.call('ZCARD', K.limit_wait) > 0 end
    if any_waiting then
      for _ = 1, f.n do wake_waiter(K, rid, now) end
    end
  end
end

-- Give back the concurrency slots one job holds (it leaves active). The caller writes `m`.
local function free_slots(K, id, m, now)
  if m.lh == nil then return end
  local freed = {}
  note_freed(freed, id, m)
  free_noted(K, freed, now)
end

-- A RateLimited job: the rate limiters it names back off until `due` (nothing starts on
-- them before, and the slots booked earlier are checked again).
local function back_off(K, m, due, now)
  if type(m.lm) ~= 'table' then return end
  for _, rid in ipairs(m.lm) do
    if type(rid) == 'string' then
      local s = read_limit(redis.call('HGET', K.limits, rid))
      if s.bo < due then s.bo = due end
      redis.call('HSET', K.limits, rid, cmsgpack.pack(s))
      redis.call('ZADD', K.limits_x, math.max(s.t, s.bo, now) + LIMIT_RECORD_MS, rid)
    end
  end
end
