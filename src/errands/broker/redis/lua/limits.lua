-- errands_v1_limits_view: the state of one limiter (errands limits), read-only, bounded.
-- KEYS: the queue's standard key list (00_shared.lua), of which it touches:
--   KEYS[3] active (read)
--   KEYS[23] limits (read)
--   KEYS[25] limit_wait (read)
-- ARGV: [1] limiter name, [2] 1 when it has a key per job (its records are scanned), 0 when it
--   has one record, [3] the scan cursor ('0' to start), [4] records per page (<= 1000; one
--   HSCAN step of that COUNT, so a page may hold fewer, even none, and still have a cursor).
-- Returns: {records as a flat array of 5-tuples {record name, GCRA time ms, back-off end ms,
--   running (holders whose job is active), parked (jobs waiting for a slot)}, next cursor
--   ('0': no more), now ms}. A record that does not decode shows as empty (fetch starts it
--   afresh).
-- Flags: no-writes (FCALL_RO: a replica may serve it).
local function limit_row(K, rid, raw)
  local s = read_limit(raw)
  local running = 0
  for _, hid in ipairs(s.h) do
    if type(hid) == 'string' and redis.call('ZSCORE', K.active, hid) then
      running = running + 1
    end
  end
  local parked = redis.call('ZLEXCOUNT', K.limit_wait, '[' .. rid .. '|', '(' .. rid .. '|\255')
  return {rid, string.format('%d', s.t), string.format('%d', s.bo),
    running, parked}
end

local function limits_view(KEYS, ARGV)
  local K = key_table(KEYS)
  local name, keyed, cursor = ARGV[1], ARGV[2] == '1', ARGV[3]
  local size = math.min(tonumber(ARGV[4]), MAX_BATCH)
  local rows, next_cursor = {}, '0'
  if keyed then
    local found = redis.call('HSCAN', K.limits, cursor, 'MATCH', name .. '|*', 'COUNT', size)
    next_cursor = found[1]
    local pairs_ = found[2]
    for i = 1, #pairs_, 2 do
      for _, v in ipairs(limit_row(K, pairs_[i], pairs_[i + 1])) do rows[#rows + 1] = v end
    end
  else
    local rid = name .. '|'
    for _, v in ipairs(limit_row(K, rid, redis.call('HGET', K.limits, rid))) do
      rows[#rows + 1] = v
    end
  end
  return {rows, next_cursor, now_ms()}
end

redis.register_function{function_name = 'errands_v1_limits_view', callback = limits_view,
  flags = {'no-writes'}}
