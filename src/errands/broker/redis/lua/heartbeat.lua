-- errands_v1_heartbeat: renew the leases of every job a worker holds in one queue.
-- KEYS: the queue's standard key list (00_shared.lua).
-- ARGV: [1] lease ms, [2] worker id, [3] worker info JSON (stored with seen = server time),
--   [4] n, then n pairs {id, token}.
-- Returns: {lost, cancelled}: ids whose lease this worker no longer holds (stop them, do not ack),
--   and ids still held that were asked to stop.
-- Invariants: only leases whose token matches are renewed; a lost lease is never revived.
local function heartbeat(KEYS, ARGV)
  local K = key_table(KEYS)
  local now = now_ms()
  local deadline = now + tonumber(ARGV[1])
  local n = tonumber(ARGV[4])
  local lost, cancelled = {}, {}
  for i = 0, n - 1 do
    local id, token = ARGV[5 + i * 2], ARGV[6 + i * 2]
    local m = get_meta(K, id)
    if m and m.s == 'active' and tostring(m.d) == token then
      redis.call('ZADD', K.active, 'XX', deadline, id)
      if redis.call('SISMEMBER', K.cancel, id) == 1 then cancelled[#cancelled + 1] = id end
    else
      lost[#lost + 1] = id
    end
  end
  -- Stamp the server's time, so maintenance never judges a worker by its own clock.
  local ok, info = pcall(cjson.decode, ARGV[3])
  if not ok or type(info) ~= 'table' then info = {} end
  info.seen = now
  redis.call('HSET', K.workers, ARGV[2], cjson.encode(info))
  return {lost, cancelled}
end

redis.register_function('errands_v1_heartbeat', heartbeat)
