-- Reads an account for operators.
-- KEYS: state, free, leases, committed_idx   ARGV: list_limit
-- Returns {now_ms, state fields, lowest free nonces, lease fields, lowest committed nonces,
--          free count, committed count}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return {
  now,
  redis.call('HGETALL', KEYS[1]),
  redis.call('ZRANGE', KEYS[2], 0, tonumber(ARGV[1]) - 1),
  redis.call('HGETALL', KEYS[3]),
  redis.call('ZRANGE', KEYS[4], 0, tonumber(ARGV[1]) - 1),
  redis.call('ZCARD', KEYS[2]),
  redis.call('ZCARD', KEYS[4]),
}
