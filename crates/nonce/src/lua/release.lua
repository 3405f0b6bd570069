-- Returns a lease's nonce to the free set (dropped below the chain floor); idempotent.
-- KEYS: state, free, leases, expiry, committed   ARGV: nonce, lease_id
-- Returns 1 (released), 0 (not held: no-op) or 2 (already committed).
local n = ARGV[1]
if redis.call('HGET', KEYS[5], n) == ARGV[2] then
  return 2
end
local rec = redis.call('HGET', KEYS[3], n)
if rec and string.sub(rec, 1, 32) == ARGV[2] then
  redis.call('HDEL', KEYS[3], n)
  redis.call('ZREM', KEYS[4], n)
  local floor = tonumber(redis.call('HGET', KEYS[1], 'floor') or '0')
  if tonumber(n) >= floor then
    redis.call('ZADD', KEYS[2], n, n)
  end
  return 1
end
return 0
