-- Applies the chain's pending nonce as a floor.
-- KEYS: state, free, committed   ARGV: chain_pending
-- Returns {previous_next, next, dropped_free}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local pending = tonumber(ARGV[1])
local previous = tonumber(redis.call('HGET', KEYS[1], 'next') or '0')
local floor = tonumber(redis.call('HGET', KEYS[1], 'floor') or '0')
local next = previous
if pending > next then next = pending end
if pending > floor then floor = pending end
redis.call('HSET', KEYS[1], 'next', string.format('%.0f', next),
  'floor', string.format('%.0f', floor), 'synced_ms', string.format('%.0f', now))

local dropped = redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1])
-- Commits the chain has passed are history: forget them.
local committed = redis.call('HKEYS', KEYS[3])
for i = 1, #committed do
  if tonumber(committed[i]) < pending then
    redis.call('HDEL', KEYS[3], committed[i])
  end
end
return {previous, next, dropped}
