-- Leases the lowest free nonce, or `next`, after reclaiming expired leases.
-- KEYS: state, free, leases, expiry   ARGV: ttl_ms, lease_id
-- Returns {nonce, expires_ms, synced}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local floor = redis.call('HGET', KEYS[1], 'floor')
local floor_n = tonumber(floor or '0')

local expired = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now)
for i = 1, #expired do
  local n = expired[i]
  redis.call('ZREM', KEYS[4], n)
  redis.call('HDEL', KEYS[3], n)
  if tonumber(n) >= floor_n then
    redis.call('ZADD', KEYS[2], n, n)
  end
end

local nonce
local lowest = redis.call('ZPOPMIN', KEYS[2])
if #lowest > 0 then
  nonce = lowest[1]
else
  nonce = string.format('%.0f', redis.call('HINCRBY', KEYS[1], 'next', 1) - 1)
end

local expires = now + tonumber(ARGV[1])
redis.call('HSET', KEYS[3], nonce,
  ARGV[2] .. ':' .. string.format('%.0f', now) .. ':' .. string.format('%.0f', expires))
redis.call('ZADD', KEYS[4], expires, nonce)
local synced = 0
if floor then synced = 1 end
return {nonce, expires, synced}
