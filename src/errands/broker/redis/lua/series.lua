-- The throughput series of a queue: once a minute, a sampler files the queue's cumulative
-- counters under the minute; a read turns consecutive samples into per-minute counts
-- (errands.broker.series). They take the series keys of one queue
-- (errands.broker.redis.series.SERIES_SUFFIXES), not the queue's whole list:
--   KEYS[1] stats   the queue's counters (the `stats` HASH every queue function updates)
--   KEYS[2] series  minute start (Unix seconds) -> "<enqueued> <succeeded> <retried> <failed>",
--                   the counters as the first sample of that minute found them; fields older
--                   than the kept span are dropped by the sample that follows them, and the
--                   whole hash expires a span after the last sample (a queue nobody samples)
--
-- errands_v1_series_sample: file the counters under the current minute, unless a sample of
-- that minute is there already (several workers and API servers sample the same queue: the
-- first one of each minute writes, the others change nothing).
-- KEYS[1] stats (read), KEYS[2] series (read, write).
-- ARGV: [1] now in ms ('' for the server's clock), [2] span kept, in seconds.
-- Returns: {1 if written else 0, ms until the next minute starts}.
-- A series that is not a hash (a key someone overwrote) is derived data: it is dropped and
-- started again. Flags: allow-oom (a few bytes a minute; the counts matter most when full).
--
-- errands_v1_series_view: the samples of a stretch of minutes (read-only).
-- KEYS[2] series (read).
-- ARGV: [1] until in ms ('' for the server's clock), [2] how many minutes (1 .. 1000).
-- Returns: {start of the minute that holds `until` (Unix seconds), then the samples of the
--   `n` minutes before it and of that minute itself, oldest first, false where there is none}.

local SERIES_COUNTERS = {'enqueued', 'succeeded', 'retried', 'failed'}

local function series_keys(KEYS)
  return {stats = KEYS[1], series = KEYS[2]}
end

local function clock_ms(given)
  if given == nil or given == '' then return now_ms() end
  return tonumber(given)
end

local function series_sample(KEYS, ARGV)
  local S = series_keys(KEYS)
  local now = clock_ms(ARGV[1])
  local span = tonumber(ARGV[2])
  if now == nil or span == nil or span < 60 then
    return redis.error_reply('ERR errands: series_sample needs a time in ms and a span of at '
      .. 'least 60 s')
  end
  local minute = math.floor(now / 60000) * 60
  local next_in = (minute + 60) * 1000 - now
  local kind = redis.call('TYPE', S.series).ok
  if kind ~= 'hash' and kind ~= 'none' then redis.call('DEL', S.series) end
  local counts = redis.call('HMGET', S.stats, unpack(SERIES_COUNTERS))
  local fields = {}
  for i = 1, #SERIES_COUNTERS do fields[i] = tostring(tonumber(counts[i]) or 0) end
  if redis.call('HSETNX', S.series, minute, table.concat(fields, ' ')) == 0 then
    return {0, next_in}
  end
  -- The hash holds a span of minutes (every write trims it): this loop is bounded by that.
  local old = {}
  for _, field in ipairs(redis.call('HKEYS', S.series)) do
    local at = tonumber(field)
    if at == nil or at <= minute - span then old[#old + 1] = field end
  end
  if #old > 0 then redis.call('HDEL', S.series, unpack(old)) end
  redis.call('EXPIRE', S.series, span + 60)
  return {1, next_in}
end

local function series_view(KEYS, ARGV)
  local S = series_keys(KEYS)
  local until_ms = clock_ms(ARGV[1])
  local n = tonumber(ARGV[2])
  if until_ms == nil or n == nil or n < 1 or n > 1000 then
    return redis.error_reply('ERR errands: series_view needs a time in ms and 1 to 1000 minutes')
  end
  local last = math.floor(until_ms / 60000) * 60
  if redis.call('TYPE', S.series).ok ~= 'hash' then return {last} end
  local fields = {}
  for i = 0, n do fields[#fields + 1] = last - 60 * (n - i) end
  local reply = redis.call('HMGET', S.series, unpack(fields))
  table.insert(reply, 1, last)
  return reply
end

redis.register_function{function_name = 'errands_v1_series_sample', callback = series_sample,
  flags = {'allow-oom'}}
redis.register_function{function_name = 'errands_v1_series_view', callback = series_view,
  flags = {'no-writes'}}
