-- The scheduler's functions: a leader lease renewed under a fencing token, the fire state the
-- leader keeps, and the schedules (their definitions and pauses). They take the scheduler's
-- keys (errands.broker.redis.keys.BeatKeys), not a queue's:
--   KEYS[1] leader   "<owner> <fence>", with a TTL: who leads, under which token
--   KEYS[2] fence    the counter that gives each new leadership its token
--   KEYS[3] defs     schedule id -> its definition (JSON written by the client; .origin read)
--   KEYS[4] state    schedule id -> its fire state (JSON written by the leader only)
--   KEYS[5] pauses   schedule id -> {paused, note, at} or {paused = false, from}: operators'
--   KEYS[6] version  bumped by every change of defs or pauses, so the leader reloads them
--
-- errands_v1_beat_lead: take the lease, or renew it when `owner` holds it. Never a blind
-- PEXPIRE: a lease is renewed only by its holder, and a new holder gets a new fence.
-- KEYS[1] leader (read, write), KEYS[2] fence (write).
-- ARGV: [1] owner, [2] lease ms.
-- Returns: {fence, ms left}: the fence is 0 when another owner holds the lease (ms left is
--   then its TTL); a lease whose value cannot be read is taken over.
--
-- errands_v1_beat_resign: give the lease up (a scheduler that stops), if still held.
-- KEYS[1] leader (read, write). ARGV: [1] owner, [2] fence. Returns 1 if given up, else 0.
--
-- errands_v1_beat_advance: store the fire state of schedules, if the fence still leads.
-- KEYS[1] leader (read), KEYS[4] state (write).
-- ARGV: [1] owner, [2] fence, [3] n, then n pairs {schedule id, state JSON}.
-- Returns: 1 when stored, 0 when the fence no longer leads (nothing is written).
--
-- errands_v1_beat_define: add or replace schedules.
-- KEYS[3] defs (read, write), KEYS[6] version (write).
-- ARGV: [1] origin ('code' or 'operator'), [2] n, then n pairs {schedule id, definition JSON}.
-- Returns: per schedule, 'created', 'replaced', 'same', or 'kept' (code never replaces a
--   schedule an operator made: it stays as it is).
--
-- errands_v1_beat_remove: delete schedules, with their state and pause.
-- KEYS[3] defs (read, write), KEYS[4] state (write), KEYS[5] pauses (write),
-- KEYS[6] version (write).
-- ARGV: [1] origin the schedule must have ('' for any), [2] n, then n schedule ids.
-- Returns: how many were deleted.
--
-- errands_v1_beat_pause: pause or resume one schedule.
-- KEYS[3] defs (read), KEYS[5] pauses (write), KEYS[6] version (write).
-- ARGV: [1] schedule id, [2] 'pause', 'resume_last' or 'resume_now', [3] note.
-- Returns: 1, or 0 when there is no such schedule.
-- Flags: every function but define is allow-oom (a full Redis must still let schedules be
--   stopped, paused and led); none of them touches a queue.

local function beat_keys(KEYS)
  return {
    leader = KEYS[1], fence = KEYS[2], defs = KEYS[3], state = KEYS[4], pauses = KEYS[5],
    version = KEYS[6],
  }
end

local function beat_lead(KEYS, ARGV)
  local B = beat_keys(KEYS)
  local owner, lease_ms = ARGV[1], tonumber(ARGV[2])
  local held = redis.call('GET', B.leader)
  if held then
    local who, fence = string.match(held, '^(.*) (%d+)$')
    if who == owner then
      redis.call('SET', B.leader, held, 'PX', lease_ms)
      return {tonumber(fence), lease_ms}
    end
    if who then
      return {0, redis.call('PTTL', B.leader)}
    end
  end
  local fence = redis.call('INCR', B.fence)
  redis.call('SET', B.leader, owner .. ' ' .. fence, 'PX', lease_ms)
  return {fence, lease_ms}
end

local function beat_resign(KEYS, ARGV)
  local B = beat_keys(KEYS)
  if redis.call('GET', B.leader) == ARGV[1] .. ' ' .. ARGV[2] then
    redis.call('DEL', B.leader)
    return 1
  end
  return 0
end

local function beat_advance(KEYS, ARGV)
  local B = beat_keys(KEYS)
  local n = tonumber(ARGV[3])
  if n == nil or #ARGV ~= 3 + 2 * n then
    return redis.error_reply('ERR errands: beat_advance needs n pairs of id and state')
  end
  if redis.call('GET', B.leader) ~= ARGV[1] .. ' ' .. ARGV[2] then
    return 0
  end
  for i = 0, n - 1 do
    redis.call('HSET', B.state, ARGV[4 + 2 * i], ARGV[5 + 2 * i])
  end
  return 1
end

-- The origin of a stored definition ('code' when it cannot be read: code may replace it).
local function origin_of(raw)
  local ok, def = pcall(cjson.decode, raw)
  if ok and type(def) == 'table' and def.origin == 'operator' then
    return 'operator'
  end
  return 'code'
end

local function beat_define(KEYS, ARGV)
  local B = beat_keys(KEYS)
  local origin, n = ARGV[1], tonumber(ARGV[2])
  if n == nil or #ARGV ~= 2 + 2 * n then
    return redis.error_reply('ERR errands: beat_define needs n pairs of id and definition')
  end
  local answers, changed = {}, false
  for i = 0, n - 1 do
    local id, def = ARGV[3 + 2 * i], ARGV[4 + 2 * i]
    local stored = redis.call('HGET', B.defs, id)
    local answer
    if not stored then
      answer = 'created'
    elseif stored == def then
      answer = 'same'
    elseif origin == 'code' and origin_of(stored) == 'operator' then
      answer = 'kept'
    else
      answer = 'replaced'
    end
    if answer == 'created' or answer == 'replaced' then
      redis.call('HSET', B.defs, id, def)
      changed = true
    end
    answers[#answers + 1] = answer
  end
  if changed then
    redis.call('INCR', B.version)
  end
  return answers
end

local function beat_remove(KEYS, ARGV)
  local B = beat_keys(KEYS)
  local only, n = ARGV[1], tonumber(ARGV[2])
  if n == nil or #ARGV ~= 2 + n then
    return redis.error_reply('ERR errands: beat_remove needs n schedule ids')
  end
  local removed = 0
  for i = 3, 2 + n do
    local stored = redis.call('HGET', B.defs, ARGV[i])
    if stored and (only == '' or origin_of(stored) == only) then
      redis.call('HDEL', B.defs, ARGV[i])
      redis.call('HDEL', B.state, ARGV[i])
      redis.call('HDEL', B.pauses, ARGV[i])
      removed = removed + 1
    end
  end
  if removed > 0 then
    redis.call('INCR', B.version)
  end
  return removed
end

local function beat_pause(KEYS, ARGV)
  local B = beat_keys(KEYS)
  local id, how, note = ARGV[1], ARGV[2], ARGV[3]
  if redis.call('HEXISTS', B.defs, id) == 0 then
    return 0
  end
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if how == 'pause' then
    redis.call('HSET', B.pauses, id, cjson.encode({paused = true, note = note, at = now}))
  elseif how == 'resume_now' then
    redis.call('HSET', B.pauses, id, cjson.encode({paused = false, from = now}))
  elseif how == 'resume_last' then
    redis.call('HDEL', B.pauses, id)
  else
    return redis.error_reply('ERR errands: beat_pause takes pause, resume_now or resume_last')
  end
  redis.call('INCR', B.version)
  return 1
end

redis.register_function{function_name = 'errands_v1_beat_lead', callback = beat_lead,
  flags = {'allow-oom'}}
redis.register_function{function_name = 'errands_v1_beat_resign', callback = beat_resign,
  flags = {'allow-oom'}}
redis.register_function{function_name = 'errands_v1_beat_advance', callback = beat_advance,
  flags = {'allow-oom'}}
redis.register_function{function_name = 'errands_v1_beat_define', callback = beat_define}
redis.register_function{function_name = 'errands_v1_beat_remove', callback = beat_remove,
  flags = {'allow-oom'}}
redis.register_function{function_name = 'errands_v1_beat_pause', callback = beat_pause,
  flags = {'allow-oom'}}
