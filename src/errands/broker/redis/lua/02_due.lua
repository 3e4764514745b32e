-- Timed sets: delayed jobs falling due, and leases expiring (fetch and maintenance).
-- Loaded after 00_shared.lua and 01_limits.lua, whose helpers these call.

-- Take up to `limit` jobs whose time in a timed set (delayed, active) is up, out of that set:
-- returns their ids and decoded metas; a record that cannot go on is buried instead.
local function take_due(K, set, now, limit, channel_prefix, cap)
  local due = redis.call('ZRANGE', set, '-inf', now, 'BYSCORE', 'LIMIT', 0, limit)
  local ids, metas = {}, {}
  if #due == 0 then return ids, metas, 0 end
  redis.call('ZREM', set, unpack(due))
  local raw = redis.call('HMGET', K.meta, unpack(due))
  for i, id in ipairs(due) do
    local m = decode_meta(raw[i])
    local why = unusable(m, true)
    if why then
      bury(K, id, why, now, channel_prefix, cap)
    else
      ids[#ids + 1] = id
      metas[#metas + 1] = m
    end
  end
  return ids, metas, #due
end

-- Move due delayed jobs to ready, FIFO by due time inside their priority. Bounded by limit.
local function promote_due(K, now, limit, channel_prefix, cap)
  local ids, metas, taken = take_due(K, K.delayed, now, limit, channel_prefix, cap)
  for i, id in ipairs(ids) do
    local m = metas[i]
    if m.lq == 1 then
      -- It waited for a limiter: it goes back to its place, ahead of the jobs sent after it.
      m.lq = nil
      unpark(K, m)
      to_ready(K, id, m, m.sc)
    else
      to_ready(K, id, m, ready_score(K, m.p))
    end
  end
  arm_wake(K.wake, #ids)
  return taken
end

local function stalled_outcome(m, now)
  return failed_outcome('JobStalled', 'the lease of this job expired ' .. m.st ..
    ' times while it ran, and ' .. (m.lo or 0) .. ' times before it was seen running ' ..
    '(max_stalls=' .. m.xs .. '): a worker holding it died or lost Redis each time; ' ..
    'it may be killing workers', m.a, now, m.d)
end

-- Give expired leases back: the job returns to its original place in ready, or goes to the
-- dead set once it has stalled more than its max_stalls. A lease lost before any heartbeat saw
-- the job running (its worker died with it queued) is no stall: it counts as lost, and only a
-- job lost LOST_SPARE times more than max_stalls allows is dead for it. Bounded by limit.
local function reap_expired(K, now, limit, channel_prefix, dead_cap)
  local ids, metas, taken = take_due(K, K.active, now, limit, channel_prefix, dead_cap)
  local requeued = 0
  for i, id in ipairs(ids) do
    local m = metas[i]
    free_slots(K, id, m, now)
    if m.r == 1 then
      m.st = m.st + 1
      redis.call('HINCRBY', K.stats, 'stalled', 1)
    else
      m.lo = (m.lo or 0) + 1
      redis.call('HINCRBY', K.stats, 'lost', 1)
    end
    if redis.call('SISMEMBER', K.cancel, id) == 1 then
      -- Asked to stop, and its worker is gone: it ends cancelled instead of running again.
      m.a = math.max(m.a - 1, 0)
      finish(K, id, m, cjson.encode({state = 'cancelled', attempts = m.a}), now, channel_prefix)
      redis.call('HINCRBY', K.stats, 'cancelled', 1)
    elseif m.st > m.xs or (m.lo or 0) > m.xs + LOST_SPARE then
      to_dead(K, id, m, stalled_outcome(m, now), now, channel_prefix, dead_cap)
    else
      if m.r == 1 then
        note_attempt(K, id, m, m.a, {type = 'errands.errors.JobStalled', message = 'its lease '
          .. 'expired while it ran: its worker died or lost Redis'}, now)
      end
      m.a = math.max(m.a - 1, 0) -- the attempt it was on is not charged: it runs again
      m.ex = 1 -- its worker may still finish it: a success is taken until someone fetches it
      to_ready(K, id, m, m.sc)
      requeued = requeued + 1
    end
  end
  arm_wake(K.wake, requeued)
  return taken
end

