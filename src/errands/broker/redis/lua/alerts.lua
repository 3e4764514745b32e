-- The alert evaluator's functions: its leader lease and the incidents the leader keeps under
-- that lease's fence. They take the evaluator's keys (errands.broker.redis.alerts.ALERT_SUFFIXES),
-- not a queue's:
--   KEYS[1] leader     "<owner> <fence>", with a TTL: which evaluator leads, under which token
--   KEYS[2] fence      the counter that gives each new leadership its token
--   KEYS[3] incidents  incident key -> its record (JSON written by the leader only)
--
-- errands_v1_alerts_lead: take the lease, or renew it when `owner` holds it: the scheduler's
-- lease (beat_lead of schedule.lua, which reads KEYS[1] and KEYS[2] only) on these keys.
-- KEYS[1] leader (read, write), KEYS[2] fence (write).
-- ARGV: [1] owner, [2] lease ms.
-- Returns: {fence, ms left}: the fence is 0 when another owner holds the lease.
--
-- errands_v1_alerts_resign: give the lease up (an evaluator that stops), if still held.
-- KEYS[1] leader (read, write). ARGV: [1] owner, [2] fence. Returns 1 if given up, else 0.
--
-- errands_v1_alerts_save: store or delete incident records, if the fence still leads.
-- KEYS[1] leader (read), KEYS[3] incidents (write).
-- ARGV: [1] owner, [2] fence, [3] n, then n pairs {incident key, record JSON, '' to delete it}.
-- Returns: 1 when stored, 0 when the fence no longer leads (nothing is written).
-- Flags: allow-oom, all three: a full Redis is when alerts matter most.

local function alert_keys(KEYS)
  return {leader = KEYS[1], fence = KEYS[2], incidents = KEYS[3]}
end

local function alerts_save(KEYS, ARGV)
  local A = alert_keys(KEYS)
  local n = tonumber(ARGV[3])
  if n == nil or #ARGV ~= 3 + 2 * n then
    return redis.error_reply('ERR errands: alerts_save needs n pairs of key and record')
  end
  if redis.call('GET', A.leader) ~= ARGV[1] .. ' ' .. ARGV[2] then
    return 0
  end
  for i = 0, n - 1 do
    local key, record = ARGV[4 + 2 * i], ARGV[5 + 2 * i]
    if record == '' then
      redis.call('HDEL', A.incidents, key)
    else
      redis.call('HSET', A.incidents, key, record)
    end
  end
  return 1
end

redis.register_function{function_name = 'errands_v1_alerts_lead', callback = beat_lead,
  flags = {'allow-oom'}}
redis.register_function{function_name = 'errands_v1_alerts_resign', callback = beat_resign,
  flags = {'allow-oom'}}
redis.register_function{function_name = 'errands_v1_alerts_save', callback = alerts_save,
  flags = {'allow-oom'}}
