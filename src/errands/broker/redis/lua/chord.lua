-- Chords: a group whose last member to succeed enqueues a callback with every result, in order.
-- The chord lives in the callback's queue; each member reports there after it succeeds, and a
-- member that ends dead (any reason: raised, lost, stalled, out of time) fails it: its queue
-- keeps a note (chord_fails) that a worker turns into chord_abort.
--
-- A chord always ends. It is recorded before its members are sent and armed once all were
-- sent; maintenance fails a chord that is not armed within its deadline (the sender stopped
-- halfway), or that is armed but not complete by the dead-letter age (a member was lost).
--
-- errands_v1_chord_start: record a chord before its members are enqueued.
-- KEYS: the callback queue's standard key list (00_shared.lua), of which it touches:
--   KEYS[6] meta (read)
--   KEYS[18] chords (read, write)
--   KEYS[20] chords_x (write)
-- ARGV: [1] chord id (also the callback's job id), [2] size, [3] callback payload, in which
--   the JSON string [4] stands for the list of results, [5] priority, [6] max attempts,
--   [7] result ttl ms, [8] ignore result (0|1), [9] max stalls, [10] ms to send the members in.
-- Returns: 1 recorded, 0 already known (the same chord started twice: nothing changes).
-- Flags: none (a full Redis refuses new work).
--
-- errands_v1_chord_arm: every member was sent.
-- KEYS it touches (of the callback queue's standard key list):
--   KEYS[7] results (write)
--   KEYS[8] results_x (read, write)
--   KEYS[13] stats (write)
--   KEYS[18] chords (read, write)
--   KEYS[19] chord_parts (write)
--   KEYS[20] chords_x (write)
-- Outside KEYS: ARGV[1] .. chord id, the callback's result channel, when the chord's record
--   cannot be read and the chord fails (published to).
-- ARGV: [1] result channel prefix, [2] chord id, [3] ms it may wait for its members from now on.
-- Returns: 1 armed, 0 unknown (it finished already, failed, or expired).
--
-- errands_v1_chord_part: a member succeeded.
-- KEYS it touches (of the callback queue's standard key list):
--   KEYS[1] ready (write)
--   KEYS[5] jobs (write)
--   KEYS[6] meta (write)
--   KEYS[7] results (write)
--   KEYS[8] results_x (read, write)
--   KEYS[11] wake (write)
--   KEYS[12] seq (read, write)
--   KEYS[13] stats (write)
--   KEYS[18] chords (read, write)
--   KEYS[19] chord_parts (read, write)
--   KEYS[20] chords_x (write)
-- Outside KEYS: ARGV[1] .. chord id, the callback's result channel, when the chord's record
--   cannot be read and the chord fails (published to).
-- ARGV: [1] result channel prefix, [2] chord id, [3] member index (0-based), [4] result JSON.
-- Returns: 0 unknown chord (finished, failed or expired), 1 this member was already counted
--   (it ran twice), 2 counted, others remain, 3 counted and last: the callback is enqueued.
-- Invariants: each member counts once; the callback is enqueued exactly once, atomically with
--   the last count, and the chord's records are deleted in the same step.
--
-- errands_v1_chord_abort: a member failed for good; the callback will never run.
-- KEYS it touches (of the callback queue's standard key list):
--   KEYS[7] results (write)
--   KEYS[8] results_x (read, write)
--   KEYS[13] stats (write)
--   KEYS[18] chords (read, write)
--   KEYS[19] chord_parts (write)
--   KEYS[20] chords_x (write)
-- Outside KEYS: ARGV[1] .. chord id, the callback's result channel (published to).
-- ARGV: [1] result channel prefix, [2] chord id, [3] the callback's outcome JSON (failed).
-- Returns: 1 aborted (the callback's result records the failure), 0 unknown chord.
--
-- A chord record that cannot be read fails the chord (its callback's result says so).
-- arm, part and abort: allow-oom (they finish work a full Redis already holds).

local function get_chord(K, id)
  local raw = redis.call('HGET', K.chords, id)
  if not raw then return nil end
  local ok, c = pcall(cmsgpack.unpack, raw)
  if not ok or type(c) ~= 'table' or type(c.r) ~= 'number' or type(c.s) ~= 'number'
      or type(c.p) ~= 'string' or type(c.ph) ~= 'string' or type(c.pr) ~= 'number'
      or type(c.m) ~= 'number' or type(c.rt) ~= 'number' or type(c.xs) ~= 'number' then
    return false
  end
  return c
end

-- Fail a chord: drop its records, store the callback's failed outcome.
local function fail_chord(K, id, c, outcome, now, prefix)
  if c then drop_parts(K, id, c.s) end
  redis.call('HDEL', K.chords, id)
  redis.call('ZREM', K.chords_x, id)
  local kept = c or {ir = 0, rt = BURIED_TTL_MS}
  local stored = store_result(K, id, {ir = kept.ir, rt = kept.rt}, outcome, now, prefix)
  expire_some(K.results, K.results_x, now, 2 * stored)
  redis.call('HINCRBY', K.stats, 'failed', 1)
end

local function unreadable_chord(now)
  return failed_outcome('ChordFailed',
    'the chord will not call back: its record cannot be read (written by something else?)',
    0, now, nil)
end

local function chord_start(KEYS, ARGV)
  local K = key_table(KEYS)
  local id = ARGV[1]
  if redis.call('HEXISTS', K.chords, id) == 1 or redis.call('HEXISTS', K.meta, id) == 1 then
    return 0
  end
  redis.call('HSET', K.chords, id, cmsgpack.pack({
    r = tonumber(ARGV[2]), s = tonumber(ARGV[2]), p = ARGV[3], ph = ARGV[4],
    pr = tonumber(ARGV[5]), m = tonumber(ARGV[6]), rt = tonumber(ARGV[7]),
    ir = tonumber(ARGV[8]), xs = tonumber(ARGV[9]), ar = 0,
  }))
  redis.call('ZADD', K.chords_x, now_ms() + tonumber(ARGV[10]), id)
  return 1
end

local function chord_arm(KEYS, ARGV)
  local K = key_table(KEYS)
  local id = ARGV[2]
  local c = get_chord(K, id)
  if c == nil then return 0 end
  local now = now_ms()
  if c == false then
    fail_chord(K, id, nil, unreadable_chord(now), now, ARGV[1])
    return 0
  end
  c.ar = 1
  redis.call('HSET', K.chords, id, cmsgpack.pack(c))
  redis.call('ZADD', K.chords_x, now + tonumber(ARGV[3]), id)
  return 1
end

local function chord_part(KEYS, ARGV)
  local K = key_table(KEYS)
  local prefix, id, index, result = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
  local c = get_chord(K, id)
  if c == nil then return 0 end
  local now = now_ms()
  if c == false then
    fail_chord(K, id, nil, unreadable_chord(now), now, prefix)
    return 0
  end
  if redis.call('HSETNX', K.chord_parts, id .. ':' .. index, result) == 0 then return 1 end
  c.r = c.r - 1
  if c.r > 0 then
    redis.call('HSET', K.chords, id, cmsgpack.pack(c))
    return 2
  end
  local fields = {}
  for i = 0, c.s - 1 do fields[#fields + 1] = id .. ':' .. i end
  local results = {}
  for start = 1, #fields, 1000 do
    local chunk = redis.call('HMGET', K.chord_parts,
      unpack(fields, start, math.min(start + 999, #fields)))
    for _, value in ipairs(chunk) do results[#results + 1] = value or 'null' end
  end
  drop_parts(K, id, c.s)
  redis.call('HDEL', K.chords, id)
  redis.call('ZREM', K.chords_x, id)
  local payload = c.p
  local at = string.find(payload, c.ph, 1, true)
  if at then
    payload = string.sub(payload, 1, at - 1) .. '[' .. table.concat(results, ',') .. ']' ..
      string.sub(payload, at + #c.ph)
  end
  local m = {a = 0, m = c.m, p = c.pr, st = 0, xs = c.xs, d = 0, rt = c.rt, ir = c.ir}
  redis.call('HSET', K.jobs, id, payload)
  to_ready(K, id, m, ready_score(K, c.pr))
  redis.call('HINCRBY', K.stats, 'enqueued', 1)
  arm_wake(K.wake, 1)
  return 3
end

local function chord_abort(KEYS, ARGV)
  local K = key_table(KEYS)
  local id = ARGV[2]
  local c = get_chord(K, id)
  if c == nil then return 0 end
  fail_chord(K, id, c, ARGV[3], now_ms(), ARGV[1])
  return 1
end

redis.register_function('errands_v1_chord_start', chord_start)
redis.register_function{function_name = 'errands_v1_chord_arm', callback = chord_arm,
  flags = {'allow-oom'}}
redis.register_function{function_name = 'errands_v1_chord_part', callback = chord_part,
  flags = {'allow-oom'}}
redis.register_function{function_name = 'errands_v1_chord_abort', callback = chord_abort,
  flags = {'allow-oom'}}
