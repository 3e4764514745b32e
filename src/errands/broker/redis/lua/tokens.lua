-- The HTTP API's bearer tokens: their records, revocations and last use, and the failed
-- attempts of each client address. They take the token keys
-- (errands.broker.redis.tokens.TOKEN_SUFFIXES), not a queue's:
--   KEYS[1] tokens   token id -> its record (JSON written by the client, opaque here; it holds
--                    the SHA-256 of the secret, never the secret)
--   KEYS[2] revoked  token id -> when it was revoked (ms)
--   KEYS[3] used     token id -> when it last authenticated a request (ms, to the minute)
--   KEYS[4] forget   token id -> when its record is deleted (ms): a revoked or expired token
--                    stays listed for a while (the client's retention), then goes
--   KEYS[5] fails    the failed attempts of one client address: a counter that expires one
--                    window after the first of them (the one key that changes with the caller)
--
-- errands_v1_tokens_check: what a request needs to be let in, in one read.
-- KEYS[1] tokens (read), KEYS[2] revoked (read), KEYS[3] used (read), KEYS[5] fails (read).
-- ARGV: [1] token id ('' for a token that does not parse), [2] failures that block.
-- Returns: {now ms, ms the address stays blocked (0: it is not), record or false, revoked ms or
--   false, last used ms or false}.
--
-- errands_v1_tokens_fail: count one failed attempt of an address.
-- KEYS[5] fails (read, write).
-- ARGV: [1] window ms.
-- Returns: {failures in the window, ms until the window ends}.
--
-- errands_v1_tokens_create: store a new token's record, and forget records that are due.
-- KEYS[1] tokens (read, write), KEYS[2] revoked (write), KEYS[3] used (write),
-- KEYS[4] forget (read, write).
-- ARGV: [1] token id, [2] record JSON, [3] when to forget it (ms; '' for a token that never
--   expires), [4] the most tokens kept.
-- Returns: 1 when stored, 0 when the id is taken (nothing is written), -1 when the most
--   tokens are kept already, due ones forgotten (the new one is not stored).
--
-- errands_v1_tokens_revoke: revoke a token; it stays listed until its forget time.
-- KEYS[1] tokens (read, write), KEYS[2] revoked (read, write), KEYS[3] used (write),
-- KEYS[4] forget (read, write).
-- ARGV: [1] token id, [2] how long a revoked record stays listed (ms).
-- Returns: {code, revoked ms}: code 0 no such token (nothing written), 1 revoked now,
--   2 revoked already (at the time given; nothing written).
--
-- errands_v1_tokens_touch: note that a token was used now, if it is still kept.
-- KEYS[1] tokens (read), KEYS[3] used (write).
-- ARGV: [1] token id. Returns: 1 when noted, 0 when the token is gone.
--
-- Flags: tokens_check is no-writes (FCALL_RO); tokens_fail and tokens_touch allow-oom (a few
-- bytes, and a full Redis must not stop the counting of failures).

-- At most this many due records are forgotten per call: a bound on its time.
local TOKENS_FORGET_BATCH = 100

local function token_keys(KEYS)
  return {tokens = KEYS[1], revoked = KEYS[2], used = KEYS[3], forget = KEYS[4], fails = KEYS[5]}
end

local function tokens_forget_due(T, now)
  local due = redis.call('ZRANGE', T.forget, '-inf', now, 'BYSCORE', 'LIMIT', 0,
    TOKENS_FORGET_BATCH)
  for _, id in ipairs(due) do
    redis.call('HDEL', T.tokens, id)
    redis.call('HDEL', T.revoked, id)
    redis.call('HDEL', T.used, id)
    redis.call('ZREM', T.forget, id)
  end
end

local function tokens_check(KEYS, ARGV)
  local T = token_keys(KEYS)
  local blocked = 0
  local failures = tonumber(redis.call('GET', T.fails) or '0') or 0
  if failures >= tonumber(ARGV[2]) then
    blocked = math.max(redis.call('PTTL', T.fails), 0)
  end
  local record, revoked, used = false, false, false
  if ARGV[1] ~= '' then
    record = redis.call('HGET', T.tokens, ARGV[1])
    revoked = redis.call('HGET', T.revoked, ARGV[1])
    used = redis.call('HGET', T.used, ARGV[1])
  end
  return {now_ms(), blocked, record, revoked, used}
end

local function tokens_fail(KEYS, ARGV)
  local T = token_keys(KEYS)
  local window = tonumber(ARGV[1])
  if window == nil or window <= 0 then
    return redis.error_reply('ERR errands: tokens_fail needs a window in ms')
  end
  local failures = tonumber(redis.call('GET', T.fails) or '0')
  if failures == nil then failures = 0 end -- not a counter of ours: start again
  local left = redis.call('PTTL', T.fails)
  if failures == 0 or left < 0 then
    redis.call('SET', T.fails, 1, 'PX', window)
    return {1, window}
  end
  redis.call('SET', T.fails, failures + 1, 'KEEPTTL')
  return {failures + 1, left}
end

local function tokens_create(KEYS, ARGV)
  local T = token_keys(KEYS)
  if redis.call('HEXISTS', T.tokens, ARGV[1]) == 1 then return 0 end
  local forget_at = ARGV[3] ~= '' and tonumber(ARGV[3]) or nil
  if ARGV[3] ~= '' and forget_at == nil then
    return redis.error_reply('ERR errands: tokens_create needs a forget time in ms, or none')
  end
  local most = tonumber(ARGV[4])
  if most == nil then
    return redis.error_reply('ERR errands: tokens_create needs the most tokens kept')
  end
  tokens_forget_due(T, now_ms())
  if redis.call('HLEN', T.tokens) >= most then return -1 end
  redis.call('HSET', T.tokens, ARGV[1], ARGV[2])
  if forget_at ~= nil then redis.call('ZADD', T.forget, forget_at, ARGV[1]) end
  return 1
end

local function tokens_revoke(KEYS, ARGV)
  local T = token_keys(KEYS)
  local keep = tonumber(ARGV[2])
  if keep == nil or keep < 0 then
    return redis.error_reply('ERR errands: tokens_revoke needs a retention in ms')
  end
  if redis.call('HEXISTS', T.tokens, ARGV[1]) == 0 then return {0, 0} end
  local before = tonumber(redis.call('HGET', T.revoked, ARGV[1]) or '')
  if before ~= nil then return {2, before} end
  local now = now_ms()
  tokens_forget_due(T, now)
  redis.call('HSET', T.revoked, ARGV[1], now)
  -- A token that expires before the retention ends keeps its earlier forget time.
  local forget_at = tonumber(redis.call('ZSCORE', T.forget, ARGV[1]) or '')
  if forget_at == nil or forget_at > now + keep then
    redis.call('ZADD', T.forget, now + keep, ARGV[1])
  end
  return {1, now}
end

local function tokens_touch(KEYS, ARGV)
  local T = token_keys(KEYS)
  if redis.call('HEXISTS', T.tokens, ARGV[1]) == 0 then return 0 end
  redis.call('HSET', T.used, ARGV[1], now_ms())
  return 1
end

redis.register_function{function_name = 'errands_v1_tokens_check', callback = tokens_check,
  flags = {'no-writes'}}
redis.register_function{function_name = 'errands_v1_tokens_fail', callback = tokens_fail,
  flags = {'allow-oom'}}
redis.register_function{function_name = 'errands_v1_tokens_create', callback = tokens_create}
redis.register_function{function_name = 'errands_v1_tokens_revoke', callback = tokens_revoke}
redis.register_function{function_name = 'errands_v1_tokens_touch', callback = tokens_touch,
  flags = {'allow-oom'}}
