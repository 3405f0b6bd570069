-- Reads an account for operators.
-- KEYS: state, free, leases, committed   ARGV: list_limit
-- Returns {now_ms, state fields, lowest free nonces, lease members with their expiry,
--          committed nonces (unordered), free count}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return {
  now,
  redis.call('HGETALL', KEYS[1]),
  redis.call('ZRANGE', KEYS[2], 0, tonumber(ARGV[1]) - 1),
  redis.call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES'),
  redis.call('HKEYS', KEYS[4]),
  redis.call('ZCARD', KEYS[2]),
}
