-- Job progress: what running tasks report (ctx.set_progress), written by their workers in
-- batches, read by AsyncResult.progress (errands.broker.redis.progress_calls).
-- KEYS: the queue's standard key list (00_shared.lua), of which each touches the ones listed in
--   its section.
--
-- errands_v1_progress: store the latest progress of many running jobs.
-- KEYS it touches (of the queue's standard key list):
--   KEYS[6] meta (read)
--   KEYS[26] progress (write)
-- ARGV: [1] n (<= 1000), then n triples {id, lease token, progress record JSON}.
-- Returns: how many records were stored.
-- Invariants: a record is stored only while its job is active under that lease token, so a
--   worker that lost the lease never overwrites the progress of a newer delivery, and a late
--   report never brings back the progress of a job that finished (its ack deleted it). A record
--   over MAX_PROGRESS bytes is skipped (the client refuses it first), so the key holds at most
--   that much per live job; the job's progress goes with the job (finish, trim_dead, purge, the
--   dead set's age limit) and stays across retries and in the dead set. The record is opaque
--   here: JSON {p fraction, m message, d data, t ms} (errands.progress).
-- Flags: none. Progress is new data: a Redis at its maxmemory refuses the call (OOM, nothing
--   written) and the worker drops the reports; the jobs go on.
--
-- errands_v1_progress_of: one job's progress (read-only: flag no-writes, so replicas may serve).
-- KEYS it touches (of the queue's standard key list):
--   KEYS[26] progress (read)
-- ARGV: [1] job id.
-- Returns: its progress record JSON, or false when it has none.

-- The most bytes of one record: errands.progress.MAX_BYTES.
local MAX_PROGRESS = 4096

local function progress(KEYS, ARGV)
  local K = key_table(KEYS)
  local n = tonumber(ARGV[1])
  if n == 0 then return 0 end
  if n > MAX_BATCH then return too_many('progress reports', n) end
  local ids = {}
  for i = 0, n - 1 do ids[i + 1] = ARGV[2 + i * 3] end
  local metas = redis.call('HMGET', K.meta, unpack(ids))
  local fields = {}
  for i = 0, n - 1 do
    local b = 1 + i * 3
    local record = ARGV[b + 3]
    local m = decode_meta(metas[i + 1])
    if m and m.s == 'active' and tostring(m.d) == ARGV[b + 2] and #record <= MAX_PROGRESS then
      fields[#fields + 1] = ARGV[b + 1]
      fields[#fields + 1] = record
    end
  end
  if #fields > 0 then redis.call('HSET', K.progress, unpack(fields)) end
  return #fields / 2
end

local function progress_of(KEYS, ARGV)
  local K = key_table(KEYS)
  return redis.call('HGET', K.progress, ARGV[1])
end

redis.register_function('errands_v1_progress', progress)
redis.register_function{function_name = 'errands_v1_progress_of', callback = progress_of,
  flags = {'no-writes'}}
