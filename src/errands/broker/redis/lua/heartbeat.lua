-- errands_v1_heartbeat: renew the leases of every job a worker holds in one queue.
-- KEYS: the queue's standard key list (00_shared.lua), of which it touches:
--   KEYS[3] active (write)
--   KEYS[6] meta (read, write)
--   KEYS[14] cancel (read)
--   KEYS[15] workers (read, write)
-- ARGV: [1] lease ms, [2] worker id, [3] worker info JSON (stored with seen = server time and
--   holding = the ids of the leases it renewed; its `lease` field, ms, says how long the record
--   stays live without another beat),
--   [4] n, then n triples {id, token, started (1: the job is running or ran, 0: only queued)}.
-- Returns: {lost, cancelled}: ids whose lease this worker no longer holds (stop them, do not ack),
--   and ids still held that were asked to stop.
-- Invariants: only leases whose token matches are renewed; a lost lease is never revived. A
--   lease reported started is marked so (meta r): only such a lease, if it expires, is charged
--   as a stall (see reap_expired).
-- The worker list expires 3 leases after the last beat of any worker in it (never sooner than
-- another worker's beat set it), so the records of workers that died go even when no worker is
-- left to run maintenance.
-- Flags: allow-oom. A full Redis must still renew leases, or it would hand running jobs out twice.
local function heartbeat(KEYS, ARGV)
  local K = key_table(KEYS)
  local now = now_ms()
  local deadline = now + tonumber(ARGV[1])
  local n = tonumber(ARGV[4])
  local lost, cancelled, holding = {}, {}, {}
  for i = 0, n - 1 do
    local id, token, started = ARGV[5 + i * 3], ARGV[6 + i * 3], ARGV[7 + i * 3]
    local m = get_meta(K, id)
    if m and m.s == 'active' and tostring(m.d) == token then
      redis.call('ZADD', K.active, 'XX', deadline, id)
      holding[#holding + 1] = id
      if started == '1' and m.r ~= 1 then
        m.r = 1
        put_meta(K, id, m)
      end
      if redis.call('SISMEMBER', K.cancel, id) == 1 then cancelled[#cancelled + 1] = id end
    else
      lost[#lost + 1] = id
    end
  end
  -- Stamp the server's time, so maintenance never judges a worker by its own clock.
  local ok, info = pcall(cjson.decode, ARGV[3])
  if not ok or type(info) ~= 'table' then info = {} end
  info.seen = now
  -- The jobs of this queue it holds, for operators (cjson would write an empty list as {}).
  info.holding = #holding > 0 and holding or nil
  redis.call('HSET', K.workers, ARGV[2], cjson.encode(info))
  local keep = 3 * tonumber(ARGV[1])
  if redis.call('PTTL', K.workers) < keep then redis.call('PEXPIRE', K.workers, keep) end
  return {lost, cancelled}
end

redis.register_function{function_name = 'errands_v1_heartbeat', callback = heartbeat,
  flags = {'allow-oom'}}
