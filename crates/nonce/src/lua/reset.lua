-- Resets an account to the chain's pending nonce.
-- KEYS: state, free, leases, committed   ARGV: chain_pending, force
-- Returns {done, outstanding, previous_next, dropped_leases}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local outstanding = redis.call('ZCOUNT', KEYS[3], '(' .. string.format('%.0f', now), '+inf')
if outstanding > 0 and ARGV[2] ~= '1' then
  return {0, outstanding, 0, 0}
end
local previous = tonumber(redis.call('HGET', KEYS[1], 'next') or '0')
local dropped = redis.call('ZCARD', KEYS[3])
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
redis.call('HSET', KEYS[1], 'next', ARGV[1], 'floor', ARGV[1],
  'synced_ms', string.format('%.0f', now))
return {1, outstanding, previous, dropped}
