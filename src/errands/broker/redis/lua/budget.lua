-- A budget per caller and window, spent atomically: how many jobs one token of the HTTP API
-- may retry from the dead set per minute (errands.web.dead), shared by every API process.
-- It takes the budget's own key (errands.broker.redis.budget.BUDGET_SUFFIXES), not a queue's:
--   KEYS[1] spent   what the caller spent in the current window: a counter that expires when
--                   the window ends (the window starts with the first spending)
--
-- errands_v1_budget_spend: spend `cost` if the window has that much left, else nothing.
-- KEYS[1] spent (read, write).
-- ARGV: [1] cost (at least 1), [2] the budget per window, [3] window ms.
-- Returns: {1 if spent else 0, what is left of the window's budget after it, ms until the
--   window ends}. A counter that is not a number (a key someone overwrote) counts as a new
--   window. Flags: allow-oom (a few bytes; a refusal must not depend on memory).

local function budget_keys(KEYS)
  return {spent = KEYS[1]}
end

local function budget_spend(KEYS, ARGV)
  local B = budget_keys(KEYS)
  local cost, budget, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
  if cost == nil or budget == nil or window == nil or cost < 1 or window < 1 then
    return redis.error_reply('ERR errands: budget_spend needs a cost, a budget and a window')
  end
  local spent = 0
  if redis.call('TYPE', B.spent).ok == 'string' then
    spent = tonumber(redis.call('GET', B.spent)) or 0
  end
  local ttl = redis.call('PTTL', B.spent)
  if spent == 0 or ttl < 0 then
    spent, ttl = 0, window
  end
  if spent + cost > budget then return {0, budget - spent, ttl} end
  redis.call('SET', B.spent, spent + cost, 'PX', ttl)
  return {1, budget - spent - cost, ttl}
end

redis.register_function{function_name = 'errands_v1_budget_spend', callback = budget_spend,
  flags = {'allow-oom'}}
